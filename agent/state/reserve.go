package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ReserveSize is the least disk space kept for the state in its reserve
// file; the reserve grows to twice the state's size when that is larger.
var ReserveSize int64 = 1 << 20

// The reserve is a file of preallocated blocks next to the state file
// (state.reserve beside state.json). When the disk is full, for example
// because an app filled its data, a checkpoint that fails for want of space
// removes the reserve and writes again into the space it freed, so the
// state is saved and the changes that free space ('paddock remove', 'paddock
// revert') can run. While the reserve is missing the state reports itself
// degraded, and every checkpoint and retry tries to make it again, so it
// comes back as soon as space does. It is CockroachDB's emergency ballast,
// kept for one file.
//
// The reserve holds blocks only against writers that must wait for free
// space like everyone else: an app that keeps writing may take the freed
// space first (then the checkpoint fails, is retried, and the agent says it
// is degraded). Apps that do not run as root cannot take the blocks that
// ext4 keeps for root.

// reservePath is the reserve file of the state.
func (s *State) reservePath() string {
	return strings.TrimSuffix(s.path, filepath.Ext(s.path)) + ".reserve"
}

// reserveTarget is the size the reserve should have for a state of size bytes.
func reserveTarget(size int) int64 {
	const unit = 64 << 10
	n := max(ReserveSize, 2*int64(size))
	return (n + unit - 1) / unit * unit
}

// keepReserve makes sure the reserve is in place and large enough for the
// state, and returns why it is not. A reserve that cannot grow is kept as it
// is. The state must be locked.
func (s *State) keepReserve() error {
	path, want := s.reservePath(), reserveTarget(s.size)
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() && fi.Size() >= want {
		return nil
	}
	// Made again only with room to spare, so that on a full disk it is not
	// made from the space its release just gave, to be released again at
	// the next checkpoint; the agent stays degraded until space returns.
	free, err := freeBytes(filepath.Dir(path))
	if err == nil && free < 2*want {
		err = fmt.Errorf("%w: %d bytes free, the reserve needs %d and as much to spare", syscall.ENOSPC, free, want)
	}
	if err == nil {
		err = makeReserve(path, want)
	}
	if err != nil {
		if fi != nil && fi.Mode().IsRegular() {
			return nil // a smaller reserve still holds what it holds
		}
		return fmt.Errorf("cannot keep a reserve of disk space for the agent's state: %w (free space on the disk of %s, for example with 'paddock remove')", err, filepath.Dir(s.path))
	}
	return nil
}

// makeReserve allocates a new reserve of size bytes aside, then renames it
// over path, so that path is either the old reserve or a whole new one.
func makeReserve(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	err = allocate(f, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// releaseReserve removes the reserve, reporting whether there was one.
func (s *State) releaseReserve() (bool, error) {
	err := os.Remove(s.reservePath())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// isNoSpace reports whether err says the disk or the quota is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeZeros writes size zero bytes to f, for filesystems without fallocate.
func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 64<<10)
	for size > 0 {
		n, err := f.Write(buf[:min(int64(len(buf)), size)])
		if err != nil {
			return err
		}
		size -= int64(n)
	}
	return nil
}
