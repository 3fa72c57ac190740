package diskfree

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Of returns what dir's filesystem has free.
func Of(dir string) (Space, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return Space{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
		}
		break
	}
	sp := Space{Bytes: int64(st.Bavail) * int64(st.Bsize), Files: int64(st.Ffree), BlockSize: int64(st.Bsize)}
	if st.Files == 0 { // no inode count
		sp.Files = -1
	}
	if sp.BlockSize <= 0 {
		sp.BlockSize = 4096
	}
	return sp, nil
}
