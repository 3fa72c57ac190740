//go:build !linux

package state

import "os"

// allocate gives f size bytes of written blocks.
func allocate(f *os.File, size int64) error { return writeZeros(f, size) }
