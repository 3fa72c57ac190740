package revisions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"paddock.dev/paddock/internal/loopmount"
)

// Mount mounts the stored blob of revision rev of app name read-only at its
// MountDir.
func Mount(name string, rev int) error {
	dir := MountDir(name, rev)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot mount %s revision %d: %w", name, rev, err)
	}
	return loopmount.MountSquashFS(BlobPath(name, rev), dir)
}

// Unmount unmounts revision rev of app name and removes its mount point,
// and the app's directory under AppsDir when nothing else is left in it
// (an install that failed leaves no empty apps/NAME behind).
func Unmount(name string, rev int) error {
	dir := MountDir(name, rev)
	if err := loopmount.Unmount(dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot remove mount point: %w", err)
	}
	if err := os.Remove(filepath.Dir(dir)); err != nil && !os.IsNotExist(err) && !errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("cannot remove %s: %w", filepath.Dir(dir), err)
	}
	return nil
}

// IsMounted reports whether revision rev of app name is mounted from its blob.
func IsMounted(name string, rev int) bool {
	f, err := loopmount.MountedFile(MountDir(name, rev))
	return err == nil && f == BlobPath(name, rev)
}
