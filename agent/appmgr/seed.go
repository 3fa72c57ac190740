package appmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/revisions"
	"paddock.dev/paddock/ota/trust"
)

// seedPath is where the image builder lists the apps it pre-installed.
func seedPath() string { return filepath.Join(dirs.LibDir, "seed.json") }

// seedFile is what the image builder writes: the apps whose package,
// assertions and data it laid out on the data partition as an install
// would have.
type seedFile struct {
	Apps []struct {
		Name     string `json:"name"`
		Revision int    `json:"revision"`
	} `json:"apps"`
}

// adoptSeed takes over the apps the image builder seeded, at the first
// boot: their assertions are checked again against the trusted keys (the
// package digests were checked when the image was built), their profiles
// are generated for this machine, and they become installed apps. Each
// app is adopted once; the list is removed when all are. The state must be
// locked.
func (m *Manager) adoptSeed() error {
	data, err := os.ReadFile(seedPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var seed seedFile
	if err := json.Unmarshal(data, &seed); err != nil {
		return fmt.Errorf("cannot read %s: %w", seedPath(), err)
	}
	trusted, err := keys.LoadTrusted()
	if err != nil {
		return err
	}
	apps := m.apps()
	var errs []error
	for _, s := range seed.Apps {
		if apps[s.Name] != nil {
			continue // adopted before a crash, or installed since
		}
		app, err := m.adoptOne(s.Name, s.Revision, trusted)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot adopt seeded app %s: %w", s.Name, err))
			continue
		}
		apps[s.Name] = app
		m.st.Set(appsKey, apps)
	}
	if len(errs) == 0 {
		os.Remove(seedPath())
	}
	return errors.Join(errs...)
}

func (m *Manager) adoptOne(name string, rev int, trusted []*keys.PublicKey) (*App, error) {
	bundle, err := os.ReadFile(revisions.AssertionPath(name, rev))
	if err != nil {
		return nil, err
	}
	r, err := trust.CheckRevision(bundle, trusted, timeNow(), "")
	if err != nil {
		return nil, err
	}
	if r.Name != name || r.Revision != rev {
		return nil, fmt.Errorf("its assertions are for %s revision %d", r.Name, r.Revision)
	}
	fi, err := os.Stat(revisions.BlobPath(name, rev))
	if err != nil {
		return nil, err
	}
	if fi.Size() != r.Size {
		return nil, fmt.Errorf("package is %d bytes, its assertion says %d", fi.Size(), r.Size)
	}
	if err := m.be.Mount(name, rev); err != nil {
		return nil, err
	}
	mf, err := m.be.ReadManifest(name, rev)
	if err != nil {
		return nil, err
	}
	if mf.Name != name || mf.Version != r.Version || mf.Type != r.Type {
		return nil, fmt.Errorf("the name, version or type in its package's manifest differ from what its assertion says: %s %s (type %s)", name, r.Version, r.Type)
	}
	if err := m.be.KeepManifest(rev, mf); err != nil {
		return nil, err
	}
	if err := m.keepGadget(name, rev, mf); err != nil {
		return nil, err
	}
	seeded := Revision{
		Revision: rev, Version: r.Version, Type: r.Type, Arch: r.Arch, Size: r.Size, SHA256: r.SHA256,
		Publisher: r.Publisher, SignKey: r.SignKey, Installed: timeNow().UTC().Truncate(1e9), Grants: r.Grants,
	}
	user, err := m.recordUserLocked(name, seeded, mf)
	if err != nil {
		return nil, err
	}
	if err := m.be.CreateData(name, rev, 0, ownerOf(user)); err != nil {
		return nil, err
	}
	conns, err := m.connectionsOf(mf)
	if err != nil {
		return nil, err
	}
	if err := m.be.GenerateProfiles(rev, mf, m.Arch, conns); err != nil {
		return nil, err
	}
	if err := m.be.SetCurrent(name, rev); err != nil {
		return nil, err
	}
	app := &App{Name: name, Current: rev, OwnerKey: r.SignKey}
	app.add(seeded)
	return app, nil
}

// seededBlobs lists the packages of the seed list, if one is left.
func seededBlobs() []string {
	data, err := os.ReadFile(seedPath())
	if err != nil {
		return nil
	}
	var seed seedFile
	if json.Unmarshal(data, &seed) != nil {
		return nil
	}
	var out []string
	for _, s := range seed.Apps {
		out = append(out, revisions.BlobPath(s.Name, s.Revision))
	}
	return out
}
