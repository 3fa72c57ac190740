package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of the given size (such as "4m") on a new
// temporary folder, unmounted when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("cannot unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a new file in dir until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return f.Name()
		}
	}
}

// TestCheckpointOnFullDisk pins issue 9 item 4: when an app filled the disk,
// the next checkpoint panicked the agent, so no change could free the space.
// Now the reserve kept beside the state lets the checkpoint through; with the
// reserve used up a checkpoint waits in memory; and once space returns the
// state is saved and the reserve made again.
func TestCheckpointOnFullDisk(t *testing.T) {
	st, path := openIn(t, mountTmpfs(t, "4m"))
	reserve := filepath.Join(filepath.Dir(path), "state.reserve")
	st.Lock()
	st.Set("k", "small")
	st.Unlock()
	if fi, err := os.Stat(reserve); err != nil || fi.Size() < ReserveSize {
		t.Fatalf("got reserve %v, %v, want a file of at least %d bytes", fi, err, ReserveSize)
	}

	filler := fill(t, filepath.Dir(path))
	big := strings.Repeat("x", 100<<10)
	st.Lock()
	st.Set("k", big)
	st.Unlock() // panicked before
	if got := getString(t, reopen(t, path), "k"); got != big {
		t.Errorf("got k of %d bytes on disk, want the %d bytes saved through the reserve", len(got), len(big))
	}
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got reserve stat error %v, want it released", err)
	}
	if reason, _ := st.Degraded(); !strings.Contains(reason, "reserve") {
		t.Errorf("got degraded reason %q, want one about the reserve", reason)
	}

	// Full again, with no reserve left: the checkpoint waits in memory.
	filler2 := fill(t, filepath.Dir(path))
	st.Lock()
	st.Set("k", big+"y")
	st.Unlock()
	if reason, _ := st.Degraded(); !strings.Contains(reason, "cannot save") || !strings.Contains(reason, "no space left") {
		t.Errorf("got degraded reason %q, want one saying the state cannot be saved for want of space", reason)
	}
	if got := getString(t, st, "k"); got != big+"y" {
		t.Errorf("got k of %d bytes in memory, want %d", len(got), len(big)+1)
	}

	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	waitHealthy(t, st)
	if got := getString(t, reopen(t, path), "k"); got != big+"y" {
		t.Errorf("got k of %d bytes on disk once space returned, want %d", len(got), len(big)+1)
	}
	if fi, err := os.Stat(reserve); err != nil || fi.Size() < ReserveSize {
		t.Errorf("got reserve %v, %v once space returned, want it made again", fi, err)
	}
}
