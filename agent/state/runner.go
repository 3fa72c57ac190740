package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// HandlerFunc does or undoes one task. It is called WITHOUT the state lock
// held, and must Lock the state around every access to it (the task's data,
// the change, other keys); each Unlock that follows a modification is a
// checkpoint on disk.
//
// Handlers must be idempotent. A do handler whose task was Doing when the
// process stopped is called again at the next start, even if it had
// finished; an undo handler likewise, and it must cope with whatever a
// partial do left behind. A do handler that fails must clean up after
// itself: a failed task is not undone, only the done tasks before it.
type HandlerFunc func(t *Task) error

// Retry, returned by a handler, asks for the handler to be called again
// after the given delay, in a later Ensure, instead of failing the task.
type Retry struct {
	After  time.Duration
	Reason string
}

func (r Retry) Error() string {
	return fmt.Sprintf("task will be retried in %s: %s", r.After, r.Reason)
}

type handlers struct{ do, undo HandlerFunc }

// Runner runs the tasks of a state's changes. Its Ensure is synchronous: it
// calls one handler at a time, in the caller's goroutine, so there is no
// Wait. Only one Runner may run the changes of a State.
type Runner struct {
	state    *State
	mu       sync.Mutex // serialises Ensure and AddHandler
	handlers map[string]handlers
	faults   map[string]bool
	faultErr error
	// stalled holds the tasks marked running whose checkpoint failed, so
	// their handler has not been called yet.
	stalled map[string]bool
	// stopping ends when Stop is called.
	stopping context.Context
	stop     context.CancelFunc
}

// NewRunner returns a runner for the changes of s. It reads the fault
// injection spec from the FaultEnv variable; a malformed spec makes every
// Ensure fail rather than run tasks without the intended faults.
func NewRunner(s *State) *Runner {
	faults, err := parseFaults(os.Getenv(FaultEnv))
	r := &Runner{state: s, handlers: map[string]handlers{}, faults: faults, faultErr: err, stalled: map[string]bool{}}
	r.stopping, r.stop = context.WithCancel(context.Background())
	return r
}

// Stopping returns a context that ends when the agent stops (Stop). A
// handler that waits for long, such as a download, gives up when it ends
// and returns Retry, so that the stop does not wait for it and the next
// start runs the task again.
func (r *Runner) Stopping() context.Context { return r.stopping }

// Stop ends the context of Stopping; it does not wait for the handler in
// progress, which the caller of Ensure waits for.
func (r *Runner) Stop() { r.stop() }

// AddHandler registers the do and undo handlers for tasks of the given kind.
// undo may be nil when there is nothing to undo. Each kind belongs to one
// manager: registering a kind twice is a bug, and panics when the agent
// starts rather than running one manager's tasks with another's handlers.
func (r *Runner) AddHandler(kind string, do, undo HandlerFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.handlers[kind]; ok {
		panic(fmt.Sprintf("internal error: task kind %q has handlers already", kind))
	}
	r.handlers[kind] = handlers{do, undo}
}

// Ensure runs every task that can run, one at a time, until none can:
// changes oldest first; within a change, tasks to undo in reverse order,
// then tasks to do in the order they were added, once the tasks they wait
// for are done. A task found Doing or Undoing, which only happens after the
// process stopped in its handler, is run again. A task that asked to be
// retried runs in a later Ensure, once its delay is over.
//
// While the state cannot be saved (see State.Degraded), Ensure calls no
// handler: it returns, and a later Ensure goes on once a checkpoint passes.
//
// Ensure returns an error only for a malformed FaultEnv; task failures are
// recorded in the tasks and their changes.
func (r *Runner) Ensure() error {
	if r.faultErr != nil {
		return r.faultErr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	retried := map[string]bool{}
	for {
		r.state.Lock()
		r.failBlocked()
		t, undo := r.next(retried)
		r.state.Unlock()
		switch {
		case t == nil || r.state.unsaved():
			return nil
		case undo:
			r.run(t, r.handlers[t.Kind()].undo, UndoingStatus, UndoneStatus, UndoStatus, retried)
		default:
			r.run(t, r.handlers[t.Kind()].do, DoingStatus, DoneStatus, DoStatus, retried)
		}
	}
}

// failBlocked fails the tasks that wait for a task that ended without being
// done (its change failed, or it was put on hold), and rolls back their changes.
func (r *Runner) failBlocked() {
	for _, c := range r.state.ChangesInProgress() {
		for _, t := range c.Tasks() {
			if t.d.Status != DoStatus {
				continue
			}
			for _, w := range t.WaitTasks() {
				if w.d.Status.Ready() && w.d.Status != DoneStatus {
					t.Errf("cannot run: task %s (%s) ended in status %s", w.d.ID, w.d.Summary, w.d.Status)
					t.SetStatus(ErrorStatus)
					c.Abort()
					break
				}
			}
		}
	}
}

// next picks the next task to run and whether to undo it; nil if none.
func (r *Runner) next(retried map[string]bool) (t *Task, undo bool) {
	now := timeNow()
	waiting := func(t *Task) bool { return retried[t.d.ID] || t.d.AtTime.After(now) }
	for _, c := range r.state.ChangesInProgress() {
		if t := c.nextUndo(waiting); t != nil {
			return t, true
		}
		if t := c.nextDo(waiting); t != nil {
			return t, false
		}
	}
	return nil, false
}

// nextUndo returns the task being undone, else the last task to undo that no
// other task to undo waits for.
func (c *Change) nextUndo(waiting func(*Task) bool) *Task {
	ts := c.Tasks()
	for _, t := range ts {
		if t.d.Status == UndoingStatus {
			return t
		}
	}
	for i := len(ts) - 1; i >= 0; i-- {
		if t := ts[i]; t.d.Status == UndoStatus && !waiting(t) && !c.hasDependentToUndo(t) {
			return t
		}
	}
	return nil
}

func (c *Change) hasDependentToUndo(t *Task) bool {
	for _, o := range c.Tasks() {
		if (o.d.Status == UndoStatus || o.d.Status == UndoingStatus) && o.waitsFor(t) {
			return true
		}
	}
	return false
}

// nextDo returns the task being done, else the first task to do whose
// prerequisites are done.
func (c *Change) nextDo(waiting func(*Task) bool) *Task {
	ts := c.Tasks()
	for _, t := range ts {
		if t.d.Status == DoingStatus {
			return t
		}
	}
	for _, t := range ts {
		if t.d.Status == DoStatus && !waiting(t) && t.prerequisitesDone() {
			return t
		}
	}
	return nil
}

func (t *Task) waitsFor(o *Task) bool {
	for _, id := range t.d.WaitFor {
		if id == o.d.ID {
			return true
		}
	}
	return false
}

func (t *Task) prerequisitesDone() bool {
	for _, w := range t.WaitTasks() {
		if w.d.Status != DoneStatus {
			return false
		}
	}
	return true
}

// run calls handler h for t: it checkpoints t as running, calls h without
// the lock, then records the outcome as ok, as again (retry) or as an error.
// Fault points sit on either side of the handler.
func (r *Runner) run(t *Task, h HandlerFunc, running, ok, again Status, retried map[string]bool) {
	before, after := "before", "after"
	if running == UndoingStatus {
		before, after = "undo-before", "undo-after"
	}
	st := r.state
	st.Lock()
	switch {
	case h == nil && running == UndoingStatus:
		t.SetStatus(ok) // nothing to undo
		st.Unlock()
		return
	case h == nil:
		r.fail(t, fmt.Errorf("no handler for task kind %q", t.d.Kind), running)
		st.Unlock()
		return
	case t.d.Status == running && r.stalled[t.d.ID]:
		delete(r.stalled, t.d.ID) // marked running, but its handler never ran
	case t.d.Status == running:
		t.Logf("running again after a restart")
	default:
		t.d.AtTime = time.Time{}
		t.SetStatus(running)
	}
	st.Unlock() // checkpoint: running
	if st.unsaved() {
		// The disk does not know that the task runs: do not let the
		// handler act before it does.
		r.stalled[t.d.ID] = true
		return
	}

	r.fault(t.Kind(), before)
	err := h(t)
	r.fault(t.Kind(), after)

	st.Lock()
	defer st.Unlock()
	var retry Retry
	switch {
	case errors.As(err, &retry):
		if t.d.Status == running { // else the change was aborted meanwhile
			t.d.AtTime = timeNow().Add(retry.After)
			t.SetStatus(again)
			t.Logf("will retry in %s: %s", retry.After, retry.Reason)
			retried[t.d.ID] = true
		}
	case err != nil:
		r.fail(t, err, running)
	case t.d.Status == running:
		t.SetStatus(ok)
	}
}

// fail records err on t; a failed do rolls the change back, a failed undo
// lets the rest of the rollback go on.
func (r *Runner) fail(t *Task, err error, running Status) {
	if running == UndoingStatus {
		t.Errf("cannot undo: %v", err)
	} else {
		t.Errf("%v", err)
	}
	t.SetStatus(ErrorStatus)
	if running == DoingStatus {
		t.Change().Abort()
	}
}
