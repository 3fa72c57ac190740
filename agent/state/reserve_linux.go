package state

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/diskfree"
)

// allocate gives f size bytes of allocated blocks (not a sparse hole), so
// that removing f frees that much space.
func allocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP):
			return writeZeros(f, size)
		}
		return os.NewSyscallError("fallocate", err)
	}
}

// freeBytes returns the bytes free in dir's filesystem, without the blocks
// that ext4 keeps for root (the agent leaves those for when all else is full).
func freeBytes(dir string) (int64, error) {
	sp, err := diskfree.Of(dir)
	return sp.Bytes, err
}
