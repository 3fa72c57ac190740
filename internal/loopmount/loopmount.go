// Package loopmount mounts read-only SquashFS images through loop devices,
// with plain syscalls, so that the agent and the early-boot stage need no
// mount(8) or losetup(8).
package loopmount

import "errors"

// ErrNotMounted is returned by MountedFile when nothing is mounted at the directory.
var ErrNotMounted = errors.New("not mounted")

// Mount is one entry of /proc/self/mountinfo.
type Mount struct {
	// Dir is the mount point.
	Dir string
	// FSType is the filesystem type, e.g. squashfs.
	FSType string
	// Source is the mounted device or source, e.g. /dev/loop3.
	Source string
	// Options are the per-mount options, e.g. ro,nosuid,nodev.
	Options string
}
