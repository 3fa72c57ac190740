package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
)

// Trust parses an armored public key and adds it to the device's trusted
// root keys as dirs.TrustedDir/FINGERPRINT.asc. Trusting a key twice is a
// no-op.
func Trust(armored []byte) (*PublicKey, error) {
	key, err := ParsePublicKey(armored)
	if err != nil {
		return nil, fmt.Errorf("cannot trust key: %w", err)
	}
	// Store our own serialization, not the caller's bytes, so the file
	// holds exactly the one key that was checked.
	data, err := key.Armored()
	if err != nil {
		return nil, fmt.Errorf("cannot trust key: %w", err)
	}
	if err := os.MkdirAll(dirs.TrustedDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot trust key %s: %w", key.Fingerprint(), err)
	}
	path := filepath.Join(dirs.TrustedDir, key.Fingerprint()+".asc")
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("cannot trust key %s: %w", key.Fingerprint(), err)
	}
	return key, nil
}

// LoadTrusted returns the trusted root keys in dirs.TrustedDir (every
// *.asc file), sorted by fingerprint. A missing directory means no keys.
func LoadTrusted() ([]*PublicKey, error) {
	ents, err := os.ReadDir(dirs.TrustedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load trusted keys: %w", err)
	}
	seen := make(map[string]bool)
	var trusted []*PublicKey
	for _, ent := range ents {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".asc") {
			continue
		}
		path := filepath.Join(dirs.TrustedDir, ent.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cannot load trusted keys: %w", err)
		}
		key, err := ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("cannot load trusted key %s: %w", path, err)
		}
		if !seen[key.Fingerprint()] {
			seen[key.Fingerprint()] = true
			trusted = append(trusted, key)
		}
	}
	sort.Slice(trusted, func(i, j int) bool { return trusted[i].Fingerprint() < trusted[j].Fingerprint() })
	return trusted, nil
}
