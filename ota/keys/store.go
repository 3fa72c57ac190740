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
)

// ErrNotFound is returned by Store.Private and Store.ExportPublic for a key
// name the store does not hold.
var ErrNotFound = errors.New("key not found")

// ErrExists is returned by Store.Create for a name the store already holds.
var ErrExists = errors.New("key already exists")

type notFoundError string

func (e notFoundError) Error() string {
	return fmt.Sprintf("key %s not found (create it with 'paddock key create %s')", string(e), string(e))
}

func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

// Store holds a developer's private keys, one armored file NAME.key each.
type Store struct {
	// Dir is the directory the key files live in.
	Dir string
}

// KeyInfo describes a key in a Store.
type KeyInfo struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

// DefaultStore returns the store in $PADDOCK_KEYS, or else in
// ~/.config/paddock/keys (honouring $XDG_CONFIG_HOME).
func DefaultStore() (*Store, error) {
	if dir := os.Getenv("PADDOCK_KEYS"); dir != "" {
		return &Store{Dir: dir}, nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("cannot find the key store (set PADDOCK_KEYS): %w", err)
	}
	return &Store{Dir: filepath.Join(cfg, "paddock", "keys")}, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.Dir, name+".key") }

// Create generates a new key called name and saves it, readable only by
// the owner. It fails with ErrExists if the store already has that name.
func (s *Store) Create(name string) (*PrivateKey, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("cannot create key: %w", err)
	}
	if _, err := os.Stat(s.path(name)); err == nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, ErrExists)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, err)
	}
	key, err := Generate(name)
	if err != nil {
		return nil, err
	}
	data, err := key.armoredPrivate()
	if err != nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, err)
	}
	if err := atomicfile.WriteFile(s.path(name), data, 0o600); err != nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, err)
	}
	return key, nil
}

// List returns the keys in the store sorted by name; a missing store
// directory holds no keys.
func (s *Store) List() ([]KeyInfo, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list keys: %w", err)
	}
	var infos []KeyInfo
	for _, ent := range ents {
		name, ok := strings.CutSuffix(ent.Name(), ".key")
		if !ok || ent.IsDir() || ValidateName(name) != nil {
			continue
		}
		key, err := s.Private(name)
		if err != nil {
			return nil, fmt.Errorf("cannot list keys: %w", err)
		}
		infos = append(infos, KeyInfo{Name: name, Fingerprint: key.Public().Fingerprint()})
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// Private loads the key called name.
func (s *Store) Private(name string) (*PrivateKey, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("cannot load key: %w", err)
	}
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundError(name)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load key %s: %w", name, err)
	}
	key, err := parsePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load key %s from %s: %w", name, s.path(name), err)
	}
	return key, nil
}

// ExportPublic returns the armored public half of the key called name.
func (s *Store) ExportPublic(name string) ([]byte, error) {
	key, err := s.Private(name)
	if err != nil {
		return nil, err
	}
	return key.Public().Armored()
}
