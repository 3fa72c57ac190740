package revisions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
)

// maxKept bounds the kept manifest when it is read back: its JSON is a
// little larger than the YAML it was parsed from, which manifest.MaxSize
// bounds.
const maxKept = 4 * manifest.MaxSize

// ManifestPath is where the agent keeps the manifest of revision rev of
// app: read once from the package at install, checked, and kept next to
// the profiles and policies generated from it, readable by root only.
func ManifestPath(app string, rev int) string {
	return filepath.Join(dirs.ProfilesDir, app, strconv.Itoa(rev), "app.json")
}

// SaveManifest keeps m, the checked manifest of revision rev, so that
// nothing reads the package's meta/app.yaml again after install: the
// agent computes the commands' policies, loads AppArmor and removes cgroups
// from the kept copy (launches read only the policies).
func SaveManifest(rev int, m *manifest.Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("internal error: cannot encode the manifest of %s: %w", m.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(ManifestPath(m.Name, rev)), 0o755); err != nil {
		return fmt.Errorf("cannot keep the manifest of %s: %w", m.Name, err)
	}
	return atomicfile.WriteFile(ManifestPath(m.Name, rev), append(data, '\n'), 0o600)
}

// LoadManifest returns the kept manifest of revision rev of app.
func LoadManifest(app string, rev int) (*manifest.Manifest, error) {
	path := ManifestPath(app, rev)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("cannot find the manifest the agent kept of %s revision %d: %w (install the revision again)", app, rev, err)
		}
		return nil, fmt.Errorf("cannot read the manifest the agent kept of %s revision %d: %w", app, rev, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKept+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxKept {
		return nil, fmt.Errorf("cannot read %s: larger than %d bytes (install the revision again)", path, maxKept)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m manifest.Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w (install the revision again)", path, err)
	}
	if m.Name != app {
		return nil, fmt.Errorf("cannot read %s: it describes %q, not %s (install the revision again)", path, m.Name, app)
	}
	return &m, nil
}
