// Package statetest gives tests a fresh agent state in a temporary root.
package statetest

import (
	"os"
	"testing"
	"time"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// Open points dirs at a new temporary root for the test (dirstest.SetRoot)
// and opens a fresh state at dirs.StateFile there.
func Open(t testing.TB) *state.State {
	t.Helper()
	dirstest.SetRoot(t)
	if err := os.MkdirAll(dirs.LibDir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(dirs.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// BreakSaving removes the state's folder (dirs.LibDir) and changes st, so
// that st cannot save and says it is degraded.
func BreakSaving(t testing.TB, st *state.State) {
	t.Helper()
	if err := os.RemoveAll(dirs.LibDir); err != nil {
		t.Fatal(err)
	}
	st.Lock()
	st.Set("statetest-broken", 1)
	st.Unlock()
}

// MendSaving makes the state's folder again and waits (10s at most) until
// st has saved and no longer says it is degraded.
func MendSaving(t testing.TB, st *state.State) {
	t.Helper()
	if err := os.MkdirAll(dirs.LibDir, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the state saved once its folder is back", 10*time.Second, func() bool {
		reason, _ := st.Degraded()
		return reason == ""
	})
}
