package policy

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// node is a device node's type ("c" or "b") and numbers.
type node struct {
	kind         string
	major, minor int64
}

// deviceOf reads the type and numbers of the device node n of the device
// (below the root directory), following links; false when it is absent
// or not a device.
func deviceOf(n string) (node, bool) {
	fi, err := os.Stat(hostPath(n))
	if err != nil {
		return node{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return node{}, false
	}
	kind := ""
	switch fi.Mode().Type() {
	case os.ModeDevice | os.ModeCharDevice:
		kind = "c"
	case os.ModeDevice:
		kind = "b"
	default:
		return node{}, false
	}
	rdev := uint64(st.Rdev)
	return node{kind: kind, major: int64(unix.Major(rdev)), minor: int64(unix.Minor(rdev))}, true
}
