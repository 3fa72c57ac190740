//go:build linux && cgo

package seccomp

import (
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// namespaceFlags are the clone flags that make new namespaces: an app gets
// none (unshare and setns are denied too), though an interface may allow
// clone outright.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// safePersonalities are the personality(2) arguments Docker allows: Linux,
// 32-bit Linux, a 2.6-looking uname, and the query 0xffffffff. The others
// turn on READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE and weaken the app's
// memory protections.
var safePersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// unsafeIoctls push input into a terminal outside the app (TIOCSTI) or
// drive the console (TIOCLINUX).
var unsafeIoctls = []uint64{unix.TIOCSTI, unix.TIOCLINUX}

// addArgRules adds the calls that are allowed only with some arguments,
// unless allowed already allows them outright.
func addArgRules(f *libseccomp.ScmpFilter, arch libseccomp.ScmpArch, allowed map[string]bool) error {
	rules := []struct {
		name   string
		action libseccomp.ScmpAction
		conds  [][]libseccomp.ScmpCondition
	}{
		{cloneCall, libseccomp.ActAllow, maskedOneOf(0, namespaceFlags, 0)},
		{clone3Call, libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS)), [][]libseccomp.ScmpCondition{nil}},
		{personalityCall, libseccomp.ActAllow, equalsOneOf(0, safePersonalities...)},
		{ioctlCall, libseccomp.ActAllow, allowedIoctls()},
	}
	for _, r := range rules {
		if allowed[r.name] {
			continue
		}
		call, ok, err := resolve(r.name, arch)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, conds := range r.conds {
			if err := f.AddRuleConditional(call, r.action, conds); err != nil {
				return fmt.Errorf("add rule for %s: %w", r.name, err)
			}
		}
	}
	return nil
}

// allowedIoctls returns conditions that match every ioctl request but
// unsafeIoctls. libseccomp has no "not equal under a mask" and drops a
// conditional deny next to an unconditional allow, so the allowed requests
// are spelled out as aligned blocks of the 32-bit request space (about 30
// masked comparisons per excluded request). The kernel reads the request as
// 32 bits, so the upper half of the register is ignored: setting it cannot
// smuggle a request past the filter.
func allowedIoctls() [][]libseccomp.ScmpCondition {
	var out [][]libseccomp.ScmpCondition
	for _, b := range complementBlocks(unsafeIoctls) {
		out = append(out, []libseccomp.ScmpCondition{condition(1, libseccomp.CompareMaskedEqual, b.mask, b.value)})
	}
	return out
}

// equalsOneOf returns one condition list per value: argument arg equals it.
func equalsOneOf(arg uint, values ...uint64) [][]libseccomp.ScmpCondition {
	var out [][]libseccomp.ScmpCondition
	for _, v := range values {
		out = append(out, []libseccomp.ScmpCondition{condition(arg, libseccomp.CompareEqual, v)})
	}
	return out
}

// maskedOneOf returns one condition list per value: argument arg, masked,
// equals it.
func maskedOneOf(arg uint, mask uint64, values ...uint64) [][]libseccomp.ScmpCondition {
	var out [][]libseccomp.ScmpCondition
	for _, v := range values {
		out = append(out, []libseccomp.ScmpCondition{condition(arg, libseccomp.CompareMaskedEqual, mask, v)})
	}
	return out
}

// condition makes a condition from constants, so an error is a bug.
func condition(arg uint, op libseccomp.ScmpCompareOp, values ...uint64) libseccomp.ScmpCondition {
	c, err := libseccomp.MakeCondition(arg, op, values...)
	if err != nil {
		panic(fmt.Sprintf("internal error: seccomp condition: %v", err))
	}
	return c
}
