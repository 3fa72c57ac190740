// Package statetest gives tests a fresh agent state in a temporary root.
package statetest

import (
	"os"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
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
