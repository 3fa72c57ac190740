package state

import (
	"fmt"
	"slices"
	"time"
)

// maxLogEntries bounds the log kept with each task: enough to tell what
// happened, small enough that the state file stays small on flash.
const maxLogEntries = 10

// Task is one step of a change, done by the handler registered for its kind.
type Task struct {
	state *State
	d     taskData
}

// taskData is the persisted part of a task.
type taskData struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Summary   string     `json:"summary"`
	Status    Status     `json:"status"`
	Data      customData `json:"data,omitempty"`
	WaitFor   []string   `json:"wait-for,omitempty"`
	Change    string     `json:"change,omitempty"`
	Log       []string   `json:"log,omitempty"`
	SpawnTime time.Time  `json:"spawn-time"`
	ReadyTime time.Time  `json:"ready-time,omitzero"`
	// AtTime is when a task that asked to be retried may run again.
	AtTime time.Time `json:"at-time,omitzero"`
}

// ID returns the task id, unique and increasing within the state. It may be
// called without the lock.
func (t *Task) ID() string { return t.d.ID }

// Kind returns the task kind, which selects its handlers. It may be called without the lock.
func (t *Task) Kind() string { return t.d.Kind }

// Summary returns the human-readable summary. It may be called without the lock.
func (t *Task) Summary() string { return t.d.Summary }

// Status returns the task status.
func (t *Task) Status() Status {
	t.state.mustBeLocked()
	return t.d.Status
}

// SetStatus sets the task status. The runner sets it as tasks run; other
// callers rarely need to.
func (t *Task) SetStatus(s Status) {
	t.state.writing()
	t.d.Status = s
	if s.Ready() {
		t.d.ReadyTime = timeNow()
	} else {
		t.d.ReadyTime = time.Time{}
	}
	if c := t.Change(); c != nil {
		c.updateReady()
	}
}

// Change returns the change the task belongs to, or nil.
func (t *Task) Change() *Change {
	t.state.mustBeLocked()
	return t.state.changes[t.d.Change]
}

// WaitFor makes t run only after other is done. If other ends in any other
// status, t fails and its change is rolled back.
func (t *Task) WaitFor(other *Task) {
	t.state.writing()
	if !slices.Contains(t.d.WaitFor, other.d.ID) {
		t.d.WaitFor = append(t.d.WaitFor, other.d.ID)
	}
}

// WaitTasks returns the tasks t waits for.
func (t *Task) WaitTasks() []*Task {
	t.state.mustBeLocked()
	ts := make([]*Task, 0, len(t.d.WaitFor))
	for _, id := range t.d.WaitFor {
		if w := t.state.tasks[id]; w != nil {
			ts = append(ts, w)
		}
	}
	return ts
}

// Get unmarshals the task's value under key into v, or returns an error
// wrapping ErrNoState.
func (t *Task) Get(key string, v any) error {
	t.state.mustBeLocked()
	return t.d.Data.get(key, v)
}

// Set stores v under key in the task, marshalled to JSON; nil deletes the key.
func (t *Task) Set(key string, v any) {
	t.state.writing()
	t.d.Data.set(key, v)
}

// Logf adds an informational line to the task log, which keeps the last
// few lines with the task.
func (t *Task) Logf(format string, args ...any) { t.addLog("INFO", format, args...) }

// Errf adds an error line to the task log; the first error reported by any
// task of a change becomes the change's Err. It does not change the status.
func (t *Task) Errf(format string, args ...any) {
	t.addLog("ERROR", format, args...)
	if c := t.Change(); c != nil && c.d.Err == "" {
		c.d.Err = t.d.Summary + ": " + fmt.Sprintf(format, args...)
	}
}

// Log returns the task log, oldest line first. Each line reads
// "TIME LEVEL message", with TIME in RFC 3339.
func (t *Task) Log() []string {
	t.state.mustBeLocked()
	return slices.Clone(t.d.Log)
}

func (t *Task) addLog(level, format string, args ...any) {
	t.state.writing()
	line := fmt.Sprintf("%s %s %s", timeNow().UTC().Format(time.RFC3339), level, fmt.Sprintf(format, args...))
	t.d.Log = append(t.d.Log, line)
	if n := len(t.d.Log); n > maxLogEntries {
		t.d.Log = slices.Clone(t.d.Log[n-maxLogEntries:])
	}
}

// SpawnTime returns when the task was created.
func (t *Task) SpawnTime() time.Time {
	t.state.mustBeLocked()
	return t.d.SpawnTime
}

// ReadyTime returns when the task reached a final status, or the zero time.
func (t *Task) ReadyTime() time.Time {
	t.state.mustBeLocked()
	return t.d.ReadyTime
}
