package revisions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
)

// SetCurrent makes revision rev the current one of app name: the links
// apps/NAME/current and data/NAME/current are each replaced atomically.
func SetCurrent(name string, rev int) error {
	target := strconv.Itoa(rev)
	for _, link := range currentLinks(name) {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("cannot switch %s to revision %d: %w", name, rev, err)
		}
		if err := atomicfile.Symlink(target, link); err != nil {
			return fmt.Errorf("cannot switch %s to revision %d: %w", name, rev, err)
		}
	}
	return nil
}

// ClearCurrent removes the current links of app name.
func ClearCurrent(name string) error {
	for _, link := range currentLinks(name) {
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("cannot unlink %s: %w", link, err)
		}
	}
	return nil
}

// Current returns the revision the apps/NAME/current link points to, or 0
// when there is none.
func Current(name string) (int, error) {
	target, err := os.Readlink(dirs.AppDir(name, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	rev, err := strconv.Atoi(target)
	if err != nil {
		return 0, fmt.Errorf("current link of %s points to %q, not a revision", name, target)
	}
	return rev, nil
}

func currentLinks(name string) []string {
	return []string{dirs.AppDir(name, "current"), dirs.AppDataDir(name, "current")}
}

// Discard removes revision rev of app name entirely: its mount, blob,
// assertions and data.
func Discard(name string, rev int) error {
	if err := Unmount(name, rev); err != nil {
		return err
	}
	for _, p := range []string{BlobPath(name, rev), BlobPath(name, rev) + ".partial", AssertionPath(name, rev)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("cannot remove %s revision %d: %w", name, rev, err)
		}
	}
	return RemoveData(name, rev)
}

// RemoveApp removes what is left of app name once its revisions are
// discarded: its common data and its empty directories.
func RemoveApp(name string) error {
	if err := ClearCurrent(name); err != nil {
		return err
	}
	if err := os.RemoveAll(dirs.AppDataDir(name, "")); err != nil {
		return fmt.Errorf("cannot remove data of %s: %w", name, err)
	}
	if err := os.Remove(dirs.AppDir(name, "")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot remove %s: %w", dirs.AppDir(name, ""), err)
	}
	return nil
}
