package state

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// openTemp opens a fresh state in a temporary directory.
func openTemp(t *testing.T) (*State, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return st, path
}

// reopen loads the state at path from disk again, as after a restart.
func reopen(t *testing.T, path string) *State {
	t.Helper()
	st, err := Open(path)
	if err != nil {
		t.Fatalf("cannot reopen state: %v", err)
	}
	return st
}

// record appends call to the "calls" list kept in the state, so that the
// record survives a simulated crash exactly as the handler's own writes do.
func record(st *State, call string) {
	st.Lock()
	defer st.Unlock()
	var calls []string
	if err := st.Get("calls", &calls); err != nil && !errors.Is(err, ErrNoState) {
		panic(err)
	}
	st.Set("calls", append(calls, call))
}

// calls returns the recorded calls, space-separated.
func calls(t *testing.T, st *State) string {
	t.Helper()
	st.Lock()
	defer st.Unlock()
	var calls []string
	if err := st.Get("calls", &calls); err != nil && !errors.Is(err, ErrNoState) {
		t.Fatal(err)
	}
	return strings.Join(calls, " ")
}

// statuses returns the statuses of the change's tasks, space-separated.
func statuses(t *testing.T, st *State, changeID string) string {
	t.Helper()
	st.Lock()
	defer st.Unlock()
	c := st.Change(changeID)
	if c == nil {
		t.Fatalf("change %s not found", changeID)
	}
	var words []string
	for _, task := range c.Tasks() {
		words = append(words, task.Status().String())
	}
	return strings.Join(words, " ")
}

// addRecorders registers, for each kind, handlers that record their calls;
// do marks the state key "did-KIND" and undo clears it. The do handler of
// kind fail returns an error "boom" without marking, and the undo handler
// of kind failUndo returns an error "undo boom".
func addRecorders(r *Runner, st *State, kinds []string, fail, failUndo string) {
	for _, kind := range kinds {
		do := func(t *Task) error {
			record(st, "do:"+kind)
			if kind == fail {
				return errors.New("boom")
			}
			st.Lock()
			st.Set("did-"+kind, true)
			st.Unlock()
			return nil
		}
		undo := func(t *Task) error {
			record(st, "undo:"+kind)
			if kind == failUndo {
				return errors.New("undo boom")
			}
			st.Lock()
			st.Set("did-"+kind, nil)
			st.Unlock()
			return nil
		}
		r.AddHandler(kind, do, undo)
	}
}

// addChain adds a change with one task per kind, each waiting for the one before.
func addChain(st *State, kinds []string) *Change {
	st.Lock()
	defer st.Unlock()
	c := st.NewChange("install", "Install hello")
	var prev *Task
	for _, kind := range kinds {
		t := st.NewTask(kind, "Task "+kind)
		if prev != nil {
			t.WaitFor(prev)
		}
		c.AddTask(t)
		prev = t
	}
	return c
}
