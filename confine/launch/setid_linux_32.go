//go:build linux && (arm || 386)

package launch

import "golang.org/x/sys/unix"

// The calls that take 32-bit ids here; the plain ones take 16-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
