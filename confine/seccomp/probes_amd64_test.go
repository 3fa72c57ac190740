//go:build linux && cgo

package seccomp

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// archProbes are the legacy calls amd64 programs still make (busybox calls
// mkdir, not mkdirat), and an x32 call, which the amd64-only filter must
// answer EPERM, not kill.
func archProbes() []probe {
	path := func(dir, name string) uintptr {
		p, _ := unix.BytePtrFromString(filepath.Join(dir, name))
		return uintptrOf(p)
	}
	return []probe{
		{"mkdir-legacy", allowed, func(dir string) unix.Errno { return raw(unix.SYS_MKDIR, path(dir, "legacy"), 0o755) }},
		{"open-legacy", allowed, func(dir string) unix.Errno {
			fd, _, errno := unix.Syscall(unix.SYS_OPEN, path(dir, "legacy-file"), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
			if errno == 0 {
				unix.Close(int(fd))
			}
			return errno
		}},
		{"stat-legacy", allowed, func(dir string) unix.Errno {
			var st unix.Stat_t
			return raw(unix.SYS_STAT, path(dir, ""), uintptrOf(&st))
		}},
		{"x32-getpid", denied, func(string) unix.Errno { return raw(x32SyscallBit | unix.SYS_GETPID) }},
	}
}

const x32SyscallBit = 0x40000000
