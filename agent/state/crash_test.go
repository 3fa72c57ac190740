package state

import (
	"errors"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// crash is the panic value of the exit replacement used by the crash tests.
type crash struct{ code int }

// ensureUntilCrash runs r.Ensure, which must stop at an injected fault.
func ensureUntilCrash(t *testing.T, r *Runner) {
	t.Helper()
	defer func() {
		switch v := recover().(type) {
		case crash:
			if v.code != FaultExitCode {
				t.Fatalf("got exit code %d, want %d", v.code, FaultExitCode)
			}
		case nil:
			t.Fatal("got Ensure returning, want it to stop at the injected fault")
		default:
			panic(v)
		}
	}()
	r.Ensure()
}

// TestResumeAfterCrash stops the process at every task boundary of a
// four-task change, checks what is on disk at that point, then restarts
// from the disk with a new Runner and checks the change completes, or rolls
// back, with every handler run to completion.
func TestResumeAfterCrash(t *testing.T) {
	const (
		doAll   = "do:fetch do:verify do:mount do:switch"
		undoAll = "undo:mount undo:verify undo:fetch"
	)
	tests := []struct {
		fault      string
		fail       string // kind whose do fails
		diskStatus string // task statuses on disk at the crash
		diskCalls  string // handler calls on disk at the crash
		wantStatus string // task statuses after the restart
		wantCalls  string
	}{
		{"fetch:before", "", "Doing Do Do Do", "", "Done Done Done Done", doAll},
		{"fetch:after", "", "Doing Do Do Do", "do:fetch", "Done Done Done Done", "do:fetch do:fetch do:verify do:mount do:switch"},
		{"verify:before", "", "Done Doing Do Do", "do:fetch", "Done Done Done Done", doAll},
		{"verify:after", "", "Done Doing Do Do", "do:fetch do:verify", "Done Done Done Done", "do:fetch do:verify do:verify do:mount do:switch"},
		{"mount:before", "", "Done Done Doing Do", "do:fetch do:verify", "Done Done Done Done", doAll},
		{"mount:after", "", "Done Done Doing Do", "do:fetch do:verify do:mount", "Done Done Done Done", "do:fetch do:verify do:mount do:mount do:switch"},
		{"switch:before", "", "Done Done Done Doing", "do:fetch do:verify do:mount", "Done Done Done Done", doAll},
		{"switch:after", "", "Done Done Done Doing", doAll, "Done Done Done Done", doAll + " do:switch"},

		{"switch:before", "switch", "Done Done Done Doing", "do:fetch do:verify do:mount", "Undone Undone Undone Error", doAll + " " + undoAll},
		{"switch:after", "switch", "Done Done Done Doing", doAll, "Undone Undone Undone Error", doAll + " do:switch " + undoAll},
		{"mount:undo-before", "switch", "Undo Undo Undoing Error", doAll, "Undone Undone Undone Error", doAll + " " + undoAll},
		{"mount:undo-after", "switch", "Undo Undo Undoing Error", doAll + " undo:mount", "Undone Undone Undone Error", doAll + " undo:mount " + undoAll},
		{"verify:undo-before", "switch", "Undo Undoing Undone Error", doAll + " undo:mount", "Undone Undone Undone Error", doAll + " " + undoAll},
		{"verify:undo-after", "switch", "Undo Undoing Undone Error", doAll + " undo:mount undo:verify", "Undone Undone Undone Error", doAll + " undo:mount undo:verify undo:verify undo:fetch"},
		{"fetch:undo-before", "switch", "Undoing Undone Undone Error", doAll + " undo:mount undo:verify", "Undone Undone Undone Error", doAll + " " + undoAll},
		{"fetch:undo-after", "switch", "Undoing Undone Undone Error", doAll + " " + undoAll, "Undone Undone Undone Error", doAll + " " + undoAll + " undo:fetch"},
	}
	kinds := []string{"fetch", "verify", "mount", "switch"}
	for _, tt := range tests {
		name := tt.fault
		if tt.fail != "" {
			name += ",fail=" + tt.fail
		}
		t.Run(name, func(t *testing.T) {
			testutil.Replace(t, &exit, func(code int) { panic(crash{code}) })
			st, path := openTemp(t)
			c := addChain(st, kinds)

			t.Setenv(FaultEnv, tt.fault)
			r := NewRunner(st)
			addRecorders(r, st, kinds, tt.fail, "")
			ensureUntilCrash(t, r)

			st = reopen(t, path)
			if got := statuses(t, st, c.ID()); got != tt.diskStatus {
				t.Errorf("at the crash: got statuses %q on disk, want %q", got, tt.diskStatus)
			}
			if got := calls(t, st); got != tt.diskCalls {
				t.Errorf("at the crash: got calls %q on disk, want %q", got, tt.diskCalls)
			}

			t.Setenv(FaultEnv, "")
			r = NewRunner(st)
			addRecorders(r, st, kinds, tt.fail, "")
			if err := r.Ensure(); err != nil {
				t.Fatal(err)
			}

			st = reopen(t, path)
			if got := statuses(t, st, c.ID()); got != tt.wantStatus {
				t.Errorf("after restart: got statuses %q, want %q", got, tt.wantStatus)
			}
			if got := calls(t, st); got != tt.wantCalls {
				t.Errorf("after restart: got calls %q, want %q", got, tt.wantCalls)
			}
			checkCompleted(t, st, c.ID(), kinds, tt.fail == "")
			crashed, _, _ := strings.Cut(tt.fault, ":")
			st.Lock()
			defer st.Unlock()
			for _, task := range st.Change(c.ID()).Tasks() {
				log := strings.Join(task.Log(), "\n")
				if got, want := strings.Contains(log, "running again after a restart"), task.Kind() == crashed; got != want {
					t.Errorf("got restart note in the log of %s %v, want %v (log %q)", task.Kind(), got, want, log)
				}
			}
		})
	}
}

// checkCompleted checks that the change is ready and that every do handler
// left its mark (done) or every undo handler cleared it (rolled back).
func checkCompleted(t *testing.T, st *State, changeID string, kinds []string, done bool) {
	t.Helper()
	st.Lock()
	defer st.Unlock()
	c := st.Change(changeID)
	want := DoneStatus
	if !done {
		want = ErrorStatus
	}
	if got := c.Status(); got != want {
		t.Errorf("got change status %s, want %s", got, want)
	}
	var missing, left []string
	for _, k := range kinds {
		var did bool
		err := st.Get("did-"+k, &did)
		switch {
		case done && err != nil:
			missing = append(missing, k)
		case !done && !errors.Is(err, ErrNoState):
			left = append(left, k)
		}
	}
	if len(missing)+len(left) > 0 {
		t.Errorf("got do not completed for %v and undo not completed for %v, want none", missing, left)
	}
	for _, task := range c.Tasks() {
		if s := task.Status(); s == DoingStatus || s == UndoingStatus {
			t.Errorf("got task %s in %s after restart", task.Kind(), s)
		}
	}
}
