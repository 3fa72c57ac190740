//go:build !linux

package revisions

import (
	"io/fs"
	"os"
	"path/filepath"
)

// chownBeneath gives dir and everything in it to owner, by path names:
// devices run Linux, where the walk goes through directory descriptors.
func chownBeneath(dir string, owner Owner) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, owner.UID, owner.GID)
	})
}
