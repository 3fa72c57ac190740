package boot

import (
	"strings"

	"paddock.dev/paddock/internal/loopmount"
)

// unmountOrder lists the mounts to unmount at shutdown, the most recent
// first: all but the root and the kernel's /proc, /sys and /dev trees.
func unmountOrder(mounts []loopmount.Mount) []string {
	var dirs []string
	for i := len(mounts) - 1; i >= 0; i-- {
		dir := mounts[i].Dir
		if dir == "/" || under(dir, "/proc") || under(dir, "/sys") || under(dir, "/dev") {
			continue
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

func under(dir, top string) bool { return dir == top || strings.HasPrefix(dir, top+"/") }
