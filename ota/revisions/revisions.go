// Package revisions does the on-disk steps of installing app revisions:
// storing a verified package blob, mounting it read-only, creating and
// carrying forward its writable data, and switching the current revision.
//
// Every function is idempotent: running it again after a crash gives the
// same result, which is what the agent's task handlers rely on.
package revisions

import (
	"fmt"
	"path/filepath"
	"strconv"

	"paddock.dev/paddock/internal/dirs"
)

// BlobPath is where revision rev of app name is stored.
func BlobPath(name string, rev int) string {
	return filepath.Join(dirs.PackagesDir, fmt.Sprintf("%s_%d.pdk", name, rev))
}

// AssertionPath is where the verified assertions of revision rev of app name are kept.
func AssertionPath(name string, rev int) string {
	return filepath.Join(dirs.AssertionsDir, fmt.Sprintf("%s_%d.assert", name, rev))
}

// MountDir is where revision rev of app name is mounted.
func MountDir(name string, rev int) string {
	return dirs.AppDir(name, strconv.Itoa(rev))
}

// DataDir is the writable data directory of revision rev of app name.
func DataDir(name string, rev int) string {
	return dirs.AppDataDir(name, strconv.Itoa(rev))
}

// CommonDir is the data directory that all revisions of app name share.
func CommonDir(name string) string {
	return dirs.AppDataDir(name, "common")
}
