package launch

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/seccomp"
)

// Secure bits that keep uid 0 from regaining capabilities at exec.
const secureBits = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<5 // NOROOT, NO_SETUID_FIXUP and KEEP_CAPS (off), each locked

// enterAppArmor makes the calling thread, which must be locked, enter the
// profile label at its next exec.
func enterAppArmor(label string) error {
	if err := apparmor.ExecAs(label); err != nil {
		return fmt.Errorf("cannot enter the AppArmor profile %s: %w (is the app's profile loaded? restart the agent)", label, err)
	}
	return nil
}

// dropPrivileges strips the calling thread, which must be locked, of every
// privilege before it forks the app: the app's user and group (and no
// other group), no capabilities in any set, no_new_privs, and the seccomp
// filter last, so that the calls before it need no allowance.
func dropPrivileges(s *Spec, lastCap int) error {
	// The bounding set and the secure bits need CAP_SETPCAP, and the
	// change of user CAP_SETUID and CAP_SETGID: both come before the
	// capabilities go.
	if err := dropBounding(lastCap); err != nil {
		return err
	}
	if err := switchUser(s.UID, s.GID); err != nil {
		return fmt.Errorf("cannot run as the app's user %d: %w", s.UID, err)
	}
	if err := clearCapabilities(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	if err := seccomp.LoadThread(s.Seccomp); err != nil {
		return fmt.Errorf("cannot load the seccomp filter: %w", err)
	}
	return nil
}

// dropBounding empties the bounding and ambient capability sets of the
// calling thread, and locks the secure bits so that exec cannot give uid 0
// its capabilities back.
func dropBounding(last int) error {
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return os.NewSyscallError("prctl(PR_CAPBSET_DROP)", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return os.NewSyscallError("prctl(PR_CAP_AMBIENT)", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secureBits, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_SECUREBITS)", err)
	}
	return nil
}

// switchUser makes uid and gid the real, effective and saved user and
// group of the calling thread, with gid as the only supplementary group
// (none for root). The calls are made on this thread alone: Go's wrappers
// change every thread of the process.
func switchUser(uid, gid int) error {
	var groups []uint32
	if gid != 0 {
		groups = []uint32{uint32(gid)}
	}
	var ptr uintptr
	if len(groups) > 0 {
		ptr = uintptr(unsafe.Pointer(&groups[0]))
	}
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(groups)), ptr, 0); e != 0 {
		return os.NewSyscallError("setgroups", e)
	}
	runtime.KeepAlive(groups)
	if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return os.NewSyscallError("setresgid", e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return os.NewSyscallError("setresuid", e)
	}
	return nil
}

// clearCapabilities empties the effective, permitted and inheritable
// capability sets of the calling thread (the locked secure bits keep a
// change of user from doing it).
func clearCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}

// lastCap is the highest capability number the kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP, nil
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
