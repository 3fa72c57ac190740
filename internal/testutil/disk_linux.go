package testutil

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs (nosuid, nodev) with the mount options opts
// (such as "size=4m,mode=0700") on dir, creating dir, and unmounts it when
// the test ends; it returns dir. It skips the test without root or when the
// kernel refuses the mount.
func MountTmpfs(t testing.TB, dir, opts string) string {
	t.Helper()
	NeedRoot(t, "mount a small tmpfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		// EINVAL: no longer a mount point, something unmounted it already.
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("cannot unmount %s: %v", dir, err)
		}
	})
	return dir
}
