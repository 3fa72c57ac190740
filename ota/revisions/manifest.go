package revisions

import (
	"errors"
	"fmt"

	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pkgfs"
)

// ReadManifest reads and checks meta/app.yaml of the mounted revision rev
// of app name, through pkgfs: a regular file of at most manifest.MaxSize
// bytes, reached without a symlink, inside the package. Every command it
// names must be an executable file inside the package (symlinks are
// followed only while they stay inside it). Errors never quote the file:
// they give its line and the kind of problem ('paddock sign' on the
// package file, or 'paddock pack' on its source, says more).
//
// The agent calls it once, at install, and keeps the result (see
// SaveManifest); nothing reads the manifest from the package
// afterwards.
func ReadManifest(name string, rev int) (*manifest.Manifest, error) {
	if !IsMounted(name, rev) {
		return nil, fmt.Errorf("cannot read the package's %s: %s revision %d is not mounted", manifest.Path, name, rev)
	}
	root, err := pkgfs.Open(MountDir(name, rev))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	data, err := root.ReadFile(manifest.Path, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("cannot read the package's %w (a package made by 'paddock pack' has a small regular file there)", err)
	}
	m, err := manifest.Parse(data, manifest.Path)
	if err != nil {
		return nil, fmt.Errorf("package's manifest is invalid: %w", redacted(err))
	}
	if err := m.CheckFiles(root.FS()); err != nil {
		return nil, fmt.Errorf("package's manifest names a command it does not hold: %w", redacted(err))
	}
	return m, nil
}

// redacted strips a manifest error of what the file holds.
func redacted(err error) error {
	var e *manifest.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%w (check the package with 'paddock sign', which says more)", e.Redacted())
	}
	return err
}
