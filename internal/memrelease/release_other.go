//go:build !linux

package memrelease

import (
	"errors"
	"runtime/debug"
)

// Release gives back the heap the Go runtime keeps; unmapping the
// binary's pages needs Linux.
func Release() (uint64, error) {
	debug.FreeOSMemory()
	return 0, errors.New("cannot unmap the binary's pages: only on Linux")
}
