package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

func TestEnsureOrder(t *testing.T) {
	type task struct {
		kind  string
		waits []string
	}
	tests := []struct {
		name  string
		tasks []task // in the order they are added to the change
		want  string
	}{{
		name:  "independent tasks run in the order added",
		tasks: []task{{"a", nil}, {"b", nil}, {"c", nil}},
		want:  "do:a do:b do:c",
	}, {
		name:  "chain added in order",
		tasks: []task{{"a", nil}, {"b", []string{"a"}}, {"c", []string{"b"}}},
		want:  "do:a do:b do:c",
	}, {
		name:  "chain added in reverse",
		tasks: []task{{"c", []string{"b"}}, {"b", []string{"a"}}, {"a", nil}},
		want:  "do:a do:b do:c",
	}, {
		name:  "diamond",
		tasks: []task{{"d", []string{"b", "c"}}, {"c", []string{"a"}}, {"b", []string{"a"}}, {"a", nil}},
		want:  "do:a do:c do:b do:d",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := openTemp(t)
			r := NewRunner(st)
			var kinds []string
			st.Lock()
			c := st.NewChange("test", "Test")
			byKind := map[string]*Task{}
			for _, tk := range tt.tasks {
				byKind[tk.kind] = st.NewTask(tk.kind, "Task "+tk.kind)
				c.AddTask(byKind[tk.kind])
				kinds = append(kinds, tk.kind)
			}
			for _, tk := range tt.tasks {
				for _, w := range tk.waits {
					byKind[tk.kind].WaitFor(byKind[w])
				}
			}
			st.Unlock()
			addRecorders(r, st, kinds, "", "")

			if err := r.Ensure(); err != nil {
				t.Fatal(err)
			}
			if got := calls(t, st); got != tt.want {
				t.Errorf("got calls %q, want %q", got, tt.want)
			}
			st.Lock()
			defer st.Unlock()
			if got := c.Status(); got != DoneStatus {
				t.Errorf("got change status %s, want Done", got)
			}
			if c.ReadyTime().IsZero() {
				t.Errorf("got zero ready time for a done change")
			}
		})
	}
}

func TestRollback(t *testing.T) {
	tests := []struct {
		name         string
		chain        bool
		fail         string
		failUndo     string
		wantCalls    string
		wantStatuses string
		wantErr      string
		wantLog      map[string]string // kind -> substring of its log
	}{{
		name:         "chain, third fails",
		chain:        true,
		fail:         "c",
		wantCalls:    "do:a do:b do:c undo:b undo:a",
		wantStatuses: "Undone Undone Error Hold",
		wantErr:      "Task c: boom",
		wantLog:      map[string]string{"c": "ERROR boom"},
	}, {
		name:         "independent tasks are undone in reverse order",
		fail:         "c",
		wantCalls:    "do:a do:b do:c undo:b undo:a",
		wantStatuses: "Undone Undone Error Hold",
		wantErr:      "Task c: boom",
	}, {
		name:         "first fails, nothing to undo",
		chain:        true,
		fail:         "a",
		wantCalls:    "do:a",
		wantStatuses: "Error Hold Hold Hold",
		wantErr:      "Task a: boom",
	}, {
		name:         "undo failure does not stop the rollback",
		chain:        true,
		fail:         "d",
		failUndo:     "b",
		wantCalls:    "do:a do:b do:c do:d undo:c undo:b undo:a",
		wantStatuses: "Undone Error Undone Error",
		wantErr:      "Task d: boom", // the first error, not the undo's
		wantLog:      map[string]string{"b": "ERROR cannot undo: undo boom"},
	}}
	kinds := []string{"a", "b", "c", "d"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, path := openTemp(t)
			var c *Change
			if tt.chain {
				c = addChain(st, kinds)
			} else {
				st.Lock()
				c = st.NewChange("test", "Test")
				for _, k := range kinds {
					c.AddTask(st.NewTask(k, "Task "+k))
				}
				st.Unlock()
			}
			r := NewRunner(st)
			addRecorders(r, st, kinds, tt.fail, tt.failUndo)
			if err := r.Ensure(); err != nil {
				t.Fatal(err)
			}
			if got := calls(t, st); got != tt.wantCalls {
				t.Errorf("got calls %q, want %q", got, tt.wantCalls)
			}
			// Check what is on disk, not only in memory.
			st = reopen(t, path)
			if got := statuses(t, st, c.ID()); got != tt.wantStatuses {
				t.Errorf("got statuses %q, want %q", got, tt.wantStatuses)
			}
			st.Lock()
			defer st.Unlock()
			c = st.Change(c.ID())
			if got := c.Status(); got != ErrorStatus {
				t.Errorf("got change status %s, want Error", got)
			}
			if err := c.Err(); err == nil || err.Error() != tt.wantErr {
				t.Errorf("got change error %v, want %q", err, tt.wantErr)
			}
			for _, task := range c.Tasks() {
				want, ok := tt.wantLog[task.Kind()]
				if got := strings.Join(task.Log(), "\n"); ok && !strings.Contains(got, want) {
					t.Errorf("got task %s log %q, want it to contain %q", task.Kind(), got, want)
				}
			}
			for _, k := range kinds {
				var did bool
				if err := st.Get("did-"+k, &did); k != tt.failUndo && !errors.Is(err, ErrNoState) {
					t.Errorf("got did-%s %v (err %v), want it cleared by undo", k, did, err)
				}
			}
		})
	}
}

func TestAbortWhileRunning(t *testing.T) {
	st, _ := openTemp(t)
	c := addChain(st, []string{"a", "b", "c"})
	r := NewRunner(st)
	addRecorders(r, st, []string{"a", "c"}, "", "")
	r.AddHandler("b", func(task *Task) error {
		record(st, "do:b")
		st.Lock()
		task.Change().Abort() // as the API would, from another goroutine
		st.Unlock()
		return nil
	}, func(task *Task) error {
		record(st, "undo:b")
		return nil
	})
	if err := r.Ensure(); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(t, st), "do:a do:b undo:b undo:a"; got != want {
		t.Errorf("got calls %q, want %q", got, want)
	}
	if got, want := statuses(t, st, c.ID()), "Undone Undone Hold"; got != want {
		t.Errorf("got statuses %q, want %q", got, want)
	}
	st.Lock()
	defer st.Unlock()
	if got := c.Status(); got != UndoneStatus {
		t.Errorf("got change status %s, want Undone", got)
	}
}

func TestMissingHandler(t *testing.T) {
	st, _ := openTemp(t)
	c := addChain(st, []string{"a", "nope"})
	r := NewRunner(st)
	addRecorders(r, st, []string{"a"}, "", "")
	if err := r.Ensure(); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(t, st, c.ID()), "Undone Error"; got != want {
		t.Errorf("got statuses %q, want %q", got, want)
	}
	st.Lock()
	defer st.Unlock()
	if err, want := c.Err(), `no handler for task kind "nope"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got change error %v, want it to contain %q", err, want)
	}
}

func TestWaitForTaskOfFailedChange(t *testing.T) {
	st, _ := openTemp(t)
	second := addChain(st, []string{"b", "c"})
	first := addChain(st, []string{"a"})
	st.Lock()
	second.Tasks()[1].WaitFor(first.Tasks()[0])
	st.Unlock()

	r := NewRunner(st)
	addRecorders(r, st, []string{"a", "b", "c"}, "a", "")
	if err := r.Ensure(); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(t, st), "do:b do:a undo:b"; got != want {
		t.Errorf("got calls %q, want %q", got, want)
	}
	if got, want := statuses(t, st, second.ID()), "Undone Error"; got != want {
		t.Errorf("got statuses %q, want %q", got, want)
	}
	st.Lock()
	defer st.Unlock()
	if err, want := second.Err(), "cannot run: task 3 (Task a) ended in status Error"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got change error %v, want it to contain %q", err, want)
	}
}

func TestRetry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	testutil.Replace(t, &timeNow, func() time.Time { return now })
	st, _ := openTemp(t)
	c := addChain(st, []string{"fetch"})
	r := NewRunner(st)
	attempts := 0
	r.AddHandler("fetch", func(task *Task) error {
		attempts++
		if attempts == 1 {
			return Retry{After: time.Minute, Reason: "network is down"}
		}
		return nil
	}, nil)

	for i, step := range []struct {
		advance      time.Duration
		wantAttempts int
		wantStatus   Status
	}{
		{0, 1, DoStatus},
		{30 * time.Second, 1, DoStatus}, // too early
		{time.Minute, 2, DoneStatus},
	} {
		now = now.Add(step.advance)
		if err := r.Ensure(); err != nil {
			t.Fatal(err)
		}
		st.Lock()
		got := c.Tasks()[0].Status()
		st.Unlock()
		if attempts != step.wantAttempts || got != step.wantStatus {
			t.Errorf("step %d: got %d attempts and status %s, want %d and %s", i, attempts, got, step.wantAttempts, step.wantStatus)
		}
	}
	st.Lock()
	defer st.Unlock()
	if log := strings.Join(c.Tasks()[0].Log(), "\n"); !strings.Contains(log, "will retry in 1m0s: network is down") {
		t.Errorf("got log %q, want a retry line", log)
	}
}

func TestChangeStatus(t *testing.T) {
	tests := []struct {
		tasks []Status
		want  Status
	}{
		{nil, HoldStatus},
		{[]Status{DoStatus, DoStatus}, DoStatus},
		{[]Status{DoneStatus, DoStatus}, DoingStatus},
		{[]Status{DoingStatus, DoStatus}, DoingStatus},
		{[]Status{DoneStatus, DoneStatus}, DoneStatus},
		{[]Status{UndoStatus, ErrorStatus, HoldStatus}, UndoingStatus},
		{[]Status{UndoneStatus, UndoingStatus, ErrorStatus}, UndoingStatus},
		{[]Status{UndoneStatus, ErrorStatus, HoldStatus}, ErrorStatus},
		{[]Status{UndoneStatus, UndoneStatus, HoldStatus}, UndoneStatus},
		{[]Status{DoneStatus, HoldStatus}, HoldStatus},
	}
	for _, tt := range tests {
		st, _ := openTemp(t)
		st.Lock()
		c := st.NewChange("test", "Test")
		for _, s := range tt.tasks {
			task := st.NewTask("k", "K")
			c.AddTask(task)
			task.SetStatus(s)
		}
		if got := c.Status(); got != tt.want {
			t.Errorf("tasks %v: got change status %s, want %s", tt.tasks, got, tt.want)
		}
		if got, want := !c.ReadyTime().IsZero(), tt.want.Ready(); got != want {
			t.Errorf("tasks %v: got ready time set %v, want %v", tt.tasks, got, want)
		}
		st.Unlock()
	}
}

// The API reads the state and starts changes while the runner works; the
// race detector checks that handlers, runner and readers share it safely.
func TestConcurrentReaders(t *testing.T) {
	st, _ := openTemp(t)
	kinds := []string{"a", "b", "c"}
	r := NewRunner(st)
	addRecorders(r, st, kinds, "b", "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			addChain(st, kinds)
			st.Lock()
			for _, c := range st.ChangesInProgress() {
				c.Status()
				c.Err()
			}
			st.Unlock()
		}
	}()
	for {
		if err := r.Ensure(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			if err := r.Ensure(); err != nil {
				t.Fatal(err)
			}
			st.Lock()
			defer st.Unlock()
			if got := len(st.ChangesInProgress()); got != 0 {
				t.Errorf("got %d changes in progress, want 0", got)
			}
			return
		default:
		}
	}
}

// TestAddHandlerTwice pins the runner's silent overwrite: a second
// AddHandler for a task kind replaced the first manager's handlers, so
// that manager's tasks ran another's code. Registering a kind twice is a
// programming error, which panics at registration, when the agent starts.
func TestAddHandlerTwice(t *testing.T) {
	st, _ := openTemp(t)
	r := NewRunner(st)
	noop := func(*Task) error { return nil }
	r.AddHandler("fetch", noop, nil)
	r.AddHandler("mount", noop, nil) // another kind is fine
	defer func() {
		got, _ := recover().(string)
		if want := `internal error: task kind "fetch" has handlers already`; got != want {
			t.Errorf("got panic %q, want %q", got, want)
		}
	}()
	r.AddHandler("fetch", noop, noop)
}
