package state

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Change is one long operation, such as installing an app revision, made of
// tasks that a Runner does, or undoes on failure.
type Change struct {
	state *State
	d     changeData
}

// changeData is the persisted part of a change.
type changeData struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Summary   string     `json:"summary"`
	TaskIDs   []string   `json:"task-ids,omitempty"`
	Data      customData `json:"data,omitempty"`
	Err       string     `json:"err,omitempty"`
	SpawnTime time.Time  `json:"spawn-time"`
	ReadyTime time.Time  `json:"ready-time,omitzero"`
}

// ID returns the change id, unique and increasing within the state. It may
// be called without the lock.
func (c *Change) ID() string { return c.d.ID }

// Kind returns the kind of change, such as "install". It may be called without the lock.
func (c *Change) Kind() string { return c.d.Kind }

// Summary returns the human-readable summary. It may be called without the lock.
func (c *Change) Summary() string { return c.d.Summary }

// Status derives the status of the change from its tasks:
//
//   - Undoing while any task waits to be undone or is being undone;
//   - Do while no task has started, Doing while any task waits or runs;
//   - then, when nothing more will run: Error if any task failed, Undone if
//     the change was rolled back, Done if every task is done, else Hold.
//
// A change without tasks is Hold.
func (c *Change) Status() Status {
	c.state.mustBeLocked()
	var n [statusCount]int
	for _, id := range c.d.TaskIDs {
		n[c.state.tasks[id].d.Status]++
	}
	total := len(c.d.TaskIDs)
	switch {
	case total == 0:
		return HoldStatus
	case n[UndoStatus]+n[UndoingStatus] > 0:
		return UndoingStatus
	case n[DoStatus] == total:
		return DoStatus
	case n[DoStatus]+n[DoingStatus] > 0:
		return DoingStatus
	case n[ErrorStatus] > 0:
		return ErrorStatus
	case n[UndoneStatus] > 0:
		return UndoneStatus
	case n[DoneStatus] == total:
		return DoneStatus
	}
	return HoldStatus
}

// IsReady reports whether nothing more will run for the change.
func (c *Change) IsReady() bool { return c.Status().Ready() }

// Err returns the first error a task of the change reported, or nil.
func (c *Change) Err() error {
	c.state.mustBeLocked()
	if c.d.Err == "" {
		return nil
	}
	return errors.New(c.d.Err)
}

// AddTask adds t, which must not belong to a change yet, at the end of the
// change. Tasks run in the order they were added, except as WaitFor orders them.
func (c *Change) AddTask(t *Task) {
	c.state.writing()
	if t.d.Change != "" {
		panic(fmt.Sprintf("internal error: task %s already belongs to change %s", t.d.ID, t.d.Change))
	}
	t.d.Change = c.d.ID
	c.d.TaskIDs = append(c.d.TaskIDs, t.d.ID)
	c.updateReady()
}

// Tasks returns the tasks of the change in the order they were added.
func (c *Change) Tasks() []*Task {
	c.state.mustBeLocked()
	ts := make([]*Task, len(c.d.TaskIDs))
	for i, id := range c.d.TaskIDs {
		ts[i] = c.state.tasks[id]
	}
	return ts
}

// Get unmarshals the change's value under key into v, or returns an error
// wrapping ErrNoState.
func (c *Change) Get(key string, v any) error {
	c.state.mustBeLocked()
	return c.d.Data.get(key, v)
}

// Set stores v under key in the change, marshalled to JSON; nil deletes the key.
func (c *Change) Set(key string, v any) {
	c.state.writing()
	c.d.Data.set(key, v)
}

// SpawnTime returns when the change was created.
func (c *Change) SpawnTime() time.Time {
	c.state.mustBeLocked()
	return c.d.SpawnTime
}

// ReadyTime returns when the change became ready, or the zero time.
func (c *Change) ReadyTime() time.Time {
	c.state.mustBeLocked()
	return c.d.ReadyTime
}

// Abort rolls the change back: tasks waiting to run are put on hold, and
// done or running tasks are marked to be undone by the runner, in reverse
// order. A task whose do handler is running when Abort is called is undone
// once the handler returns.
func (c *Change) Abort() {
	c.state.writing()
	for _, t := range c.Tasks() {
		switch t.d.Status {
		case DoStatus:
			t.SetStatus(HoldStatus)
		case DoingStatus, DoneStatus:
			t.SetStatus(UndoStatus)
		}
	}
}

// updateReady records when the change becomes ready, and forgets it if the
// change is reopened (a task added or set back to run).
func (c *Change) updateReady() {
	switch ready := c.IsReady(); {
	case ready && c.d.ReadyTime.IsZero():
		c.d.ReadyTime = timeNow()
	case !ready:
		c.d.ReadyTime = time.Time{}
	}
}

// waitedOn reports whether any task of c is in waited.
func (c *Change) waitedOn(waited map[string]bool) bool {
	return slices.ContainsFunc(c.d.TaskIDs, func(id string) bool { return waited[id] })
}
