package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// TestCheckpointOnFullDisk pins issue 9 item 4: when an app filled the disk,
// the next checkpoint panicked the agent, so no change could free the space.
// Now the reserve kept beside the state lets the checkpoint through; with the
// reserve used up a checkpoint waits in memory; and once space returns the
// state is saved and the reserve made again.
func TestCheckpointOnFullDisk(t *testing.T) {
	st, path := openIn(t, testutil.MountTmpfs(t, t.TempDir(), "size=4m,mode=0700"))
	reserve := filepath.Join(filepath.Dir(path), "state.reserve")
	st.Lock()
	st.Set("k", "small")
	st.Unlock()
	if fi, err := os.Stat(reserve); err != nil || fi.Size() < ReserveSize {
		t.Fatalf("got reserve %v, %v, want a file of at least %d bytes", fi, err, ReserveSize)
	}

	filler := filepath.Join(filepath.Dir(path), "filler")
	testutil.FillDisk(t, filler)
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
	filler2 := filepath.Join(filepath.Dir(path), "filler2")
	testutil.FillDisk(t, filler2)
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
