package launch

import (
	"fmt"
	"os"
	"strconv"
	"strings"

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
// privilege before it forks the app: no_new_privs, no capabilities in any
// set, and the seccomp filter last, so that the calls before it need no
// allowance.
func dropPrivileges(s *Spec, lastCap int) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	if err := dropCapabilities(lastCap); err != nil {
		return err
	}
	if err := seccomp.LoadThread(s.Seccomp); err != nil {
		return fmt.Errorf("cannot load the seccomp filter: %w", err)
	}
	return nil
}

// dropCapabilities empties the bounding, ambient, effective, permitted and
// inheritable capability sets of the calling thread, and locks the secure
// bits so that exec cannot give uid 0 its capabilities back.
func dropCapabilities(last int) error {
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
