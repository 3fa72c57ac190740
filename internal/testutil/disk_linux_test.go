package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountTmpfsFill checks that FillDisk fills a small tmpfs and that the
// tmpfs is gone after the test.
func TestMountTmpfsFill(t *testing.T) {
	var dir string
	t.Run("mount", func(t *testing.T) {
		dir = MountTmpfs(t, filepath.Join(t.TempDir(), "small"), "size=1m,mode=0700")
		p := filepath.Join(dir, "filler")
		FillDisk(t, p)
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || st.Bavail != 0 {
			t.Errorf("got %d blocks free, %v, want a full disk", st.Bavail, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() < 512<<10 {
			t.Errorf("got filler %v, %v, want most of 1 MiB", fi, err)
		}
	})
	if dir == "" {
		t.Skip("the tmpfs was not mounted")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s is still there after the test", dir)
	}
}
