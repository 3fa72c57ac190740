// Package dirstest helps tests run real code in a temporary root.
package dirstest

import (
	"testing"

	"paddock.dev/paddock/internal/dirs"
)

// SetRoot points the paths at a fresh temporary directory for the
// duration of the test, restores the previous root on cleanup, and returns
// the new root.
func SetRoot(t testing.TB) string {
	t.Helper()
	old := dirs.Root
	root := t.TempDir()
	dirs.SetRootDir(root)
	t.Cleanup(func() { dirs.SetRootDir(old) })
	return root
}
