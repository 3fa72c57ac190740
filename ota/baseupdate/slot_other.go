//go:build !linux

package baseupdate

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("cannot update the base: base slots are written on Linux devices only")

func checkNotInUse(slot, running string) error           { return errNotLinux }
func openSlot(slot string, size int64) (*os.File, error) { return nil, errNotLinux }
func alignedBuffer(n int) []byte                         { return make([]byte, n) }

const directAlign = 4096

func openDirect(path string, flag int) *os.File { return nil }

func datasync(f *os.File) error { return f.Sync() }

func dropCache(f *os.File, size int64)   {}
func dropRange(f *os.File, off, n int64) {}
