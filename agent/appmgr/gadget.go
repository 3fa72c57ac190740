package appmgr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pkgfs"
	"paddock.dev/paddock/ota/revisions"
)

// gadgetPath is where the agent keeps the gadget.yaml of revision rev of
// the gadget package name: read once from the package at install,
// checked, and kept next to its manifest, readable by root only.
func gadgetPath(name string, rev int) string {
	return filepath.Join(dirs.ProfilesDir, name, strconv.Itoa(rev), gadget.File)
}

// keepGadget reads and checks gadget.yaml of the mounted gadget revision
// rev of name through pkgfs (a regular file of at most gadget.MaxSize
// bytes, reached without a symlink, inside the package) and keeps it, so
// that nothing reads it from the package again. Errors never quote the
// file.
func keepGadget(name string, rev int) error {
	if !revisions.IsMounted(name, rev) {
		return fmt.Errorf("cannot read the gadget's %s: %s revision %d is not mounted", gadget.File, name, rev)
	}
	root, err := pkgfs.Open(revisions.MountDir(name, rev))
	if err != nil {
		return err
	}
	defer root.Close()
	data, err := root.ReadFile(gadget.File, gadget.MaxSize)
	if err != nil {
		return fmt.Errorf("cannot read the gadget's %w (a gadget package holds its gadget.yaml at its top)", err)
	}
	if _, err := gadget.Parse(data, gadget.File); err != nil {
		return fmt.Errorf("gadget %s revision %d has an invalid %s: %w", name, rev, gadget.File, redactedGadget(err))
	}
	if err := os.MkdirAll(filepath.Dir(gadgetPath(name, rev)), 0o755); err != nil {
		return fmt.Errorf("cannot keep the gadget of %s: %w", name, err)
	}
	return atomicfile.WriteFile(gadgetPath(name, rev), data, 0o600)
}

// loadGadget returns the kept gadget.yaml of revision rev of name, parsed
// and checked again.
func loadGadget(name string, rev int) (*gadget.Gadget, error) {
	path := gadgetPath(name, rev)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the gadget the agent kept of %s revision %d: %w (refresh the gadget)", name, rev, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, gadget.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	g, err := gadget.Parse(data, path)
	if err != nil {
		return nil, fmt.Errorf("cannot use the gadget the agent kept of %s revision %d: %w", name, rev, redactedGadget(err))
	}
	return g, nil
}

// redactedGadget strips a gadget.yaml error of what the file holds.
func redactedGadget(err error) error {
	var e *gadget.Error
	if errors.As(err, &e) {
		return e.Redacted()
	}
	return err
}

// keepGadget keeps the gadget.yaml of a revision of a gadget package (it
// does nothing for an app): read once from the mounted package, checked,
// and kept, like its manifest.
func (m *Manager) keepGadget(name string, rev int, mf *manifest.Manifest) error {
	if mf.Type != manifest.TypeGadget {
		return nil
	}
	return m.be.KeepGadget(name, rev)
}

// checkType refuses packages that are neither apps nor gadgets, and a
// gadget other than the device's own: a device has one board.
func (m *Manager) checkType(name, typ string) error {
	switch typ {
	case manifest.TypeApp:
		return nil
	case manifest.TypeGadget:
		m.st.Lock()
		installed, _ := m.gadgetApp()
		m.st.Unlock()
		if installed != "" && installed != name {
			return refused("cannot install %s: this device's gadget is %s (a device has one gadget; refresh %s instead)", name, installed, installed)
		}
		return nil
	}
	return refused("cannot install %s: packages of type %s are not apps", name, typ)
}

// checkRemovable refuses to remove the device's gadget: it describes the
// board the device is.
func checkRemovable(app *App) error {
	if r := app.CurrentRevision(); r != nil && r.Type == manifest.TypeGadget {
		return refused("cannot remove %s: it is the device's gadget, which describes its board and cannot be removed (refresh it to a newer revision instead)", app.Name)
	}
	return nil
}

// gadgetApp returns the name and current revision of the installed gadget
// package, or "" when there is none; the state must be locked.
func (m *Manager) gadgetApp() (string, int) {
	for name, app := range m.apps() {
		if r := app.CurrentRevision(); r != nil && r.Type == manifest.TypeGadget {
			return name, r.Revision
		}
	}
	return "", 0
}

// gadgetLocked returns the gadget.yaml kept of the current revision of the
// device's gadget, or nil when no gadget is installed; the state must be
// locked.
func (m *Manager) gadgetLocked() (*gadget.Gadget, error) {
	name, rev := m.gadgetApp()
	if name == "" {
		return nil, nil
	}
	return m.be.KeptGadget(name, rev)
}

// Gadget returns the name of the device's gadget package and the
// gadget.yaml the agent kept of its current revision; "" and nil when no
// gadget is installed.
func (m *Manager) Gadget() (string, *gadget.Gadget, error) {
	m.st.Lock()
	defer m.st.Unlock()
	name, _ := m.gadgetApp()
	g, err := m.gadgetLocked()
	return name, g, err
}
