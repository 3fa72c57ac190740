package statetest

import (
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs"
)

func TestOpen(t *testing.T) {
	old := dirs.Root
	t.Run("open", func(t *testing.T) {
		st := Open(t)
		if !strings.HasPrefix(dirs.StateFile, os.TempDir()) {
			t.Errorf("got state file %s, want one below %s", dirs.StateFile, os.TempDir())
		}
		st.Lock()
		st.Set("k", "v")
		st.Unlock()
		if _, err := os.Stat(dirs.StateFile); err != nil {
			t.Errorf("got %v, want the state saved at %s", err, dirs.StateFile)
		}
	})
	if dirs.Root != old {
		t.Errorf("got root %s after the test, want %s back", dirs.Root, old)
	}
}

// TestBreakAndMendSaving checks that BreakSaving makes the state degraded
// and MendSaving saves it again.
func TestBreakAndMendSaving(t *testing.T) {
	st := Open(t)
	t.Cleanup(st.Close)
	BreakSaving(t, st)
	if reason, _ := st.Degraded(); !strings.Contains(reason, "cannot save") {
		t.Errorf("got degraded reason %q, want one saying the state cannot be saved", reason)
	}
	MendSaving(t, st)
	if _, err := os.Stat(dirs.StateFile); err != nil {
		t.Errorf("got %v, want the state saved", err)
	}
}
