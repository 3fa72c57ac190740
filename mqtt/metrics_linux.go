package mqtt

import (
	"os"

	"golang.org/x/sys/unix"
)

// diskFree is the space left to unprivileged writers on dir's file system.
func diskFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("statfs", err)
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}
