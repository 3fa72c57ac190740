// Package state is the agent's persistent state and change engine, modelled
// on snapd's overlord state and task runner, simplified.
//
// A State holds the agent's data (JSON values by key) and its changes. A
// Change is one long operation, such as installing an app revision; it is
// made of Tasks, and each task kind has a do and an undo handler (see
// Runner). Everything is kept in one JSON file, rewritten atomically whenever
// the state is unlocked after a modification, so a power cut at any point
// leaves either the previous or the next checkpoint on disk.
//
// # Locking
//
// Every method of State, Change and Task, except State.Lock, State.Unlock
// and the ID, Kind and Summary of changes and tasks, must be called with the
// state locked; a call while nobody holds the lock panics with an internal
// error.
// Unlock writes the state to disk if it was modified since Lock.
//
// # When the state cannot be saved
//
// A checkpoint that cannot be written (a full disk, no file descriptors
// left, an I/O error) does not stop the agent: a crash would only come back
// to the same disk, and a crash loop helps nobody. The state stays in memory,
// marked modified; the checkpoint is retried with backoff; the state reports
// itself degraded (see Degraded); and the Runner starts no task handler until
// the state is saved again, so the disk is never more than one step behind
// what the handlers did, which the idempotent handlers recover from after a
// power cut. A reserve file of preallocated space next to the state is given
// up to let a checkpoint through when the disk is full (see reserve.go).
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// ErrNoState is returned by the Get methods when the key has no value.
var ErrNoState = errors.New("no state entry")

// timeNow is replaced by tests.
var timeNow = time.Now

// State is the agent's persistent state. See the package documentation for
// the locking rule.
type State struct {
	mu       sync.Mutex
	path     string
	modified bool
	// size is the length of the last checkpoint, which sizes the reserve.
	size int

	h         health
	log       *slog.Logger // guarded by h.mu
	recovered func()       // guarded by h.mu

	data         customData
	changes      map[string]*Change
	tasks        map[string]*Task
	lastChangeID int
	lastTaskID   int
}

// Open loads the state from path. A missing file gives an empty state,
// which is written at the first modification; a file that cannot be decoded
// is an error naming the file.
func Open(path string) (*State, error) {
	s := &State{path: path, changes: map[string]*Change{}, tasks: map[string]*Task{}}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state: %w", err)
	}
	if err := s.decode(raw); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w (restore it from a backup, or move it aside to start from an empty state)", path, err)
	}
	s.size = len(raw)
	return s, nil
}

// Lock acquires the state lock.
func (s *State) Lock() { s.mu.Lock() }

// Unlock checkpoints the state to disk if it was modified since Lock, then
// releases the lock. A checkpoint that cannot be written keeps the
// modification pending, in memory, and is retried (see the package
// documentation).
func (s *State) Unlock() {
	defer s.mu.Unlock()
	if s.modified {
		s.checkpoint()
	}
}

// mustBeLocked panics when the caller does not hold the state lock: reading
// or writing the state without it is a bug that would otherwise show up as a
// rare race on a device.
func (s *State) mustBeLocked() {
	if s.mu.TryLock() {
		s.mu.Unlock()
		panic("internal error: state accessed without holding its lock")
	}
}

// writing marks the state modified, so the next Unlock checkpoints it.
func (s *State) writing() {
	s.mustBeLocked()
	s.modified = true
}

// Get unmarshals the value stored under key into v, or returns an error
// wrapping ErrNoState when there is none.
func (s *State) Get(key string, v any) error {
	s.mustBeLocked()
	return s.data.get(key, v)
}

// Set stores v, marshalled to JSON, under key; a nil v deletes the key.
// It panics if v cannot be marshalled, which is a programming error.
func (s *State) Set(key string, v any) {
	s.writing()
	s.data.set(key, v)
}

// NewChange adds a new change, with no tasks yet, and returns it.
func (s *State) NewChange(kind, summary string) *Change {
	s.writing()
	s.lastChangeID++
	c := &Change{state: s, d: changeData{
		ID: strconv.Itoa(s.lastChangeID), Kind: kind, Summary: summary, SpawnTime: timeNow(),
	}}
	s.changes[c.d.ID] = c
	c.updateReady() // without tasks it is ready, on hold
	return c
}

// NewTask returns a new task, to be added to a change with Change.AddTask.
func (s *State) NewTask(kind, summary string) *Task {
	s.writing()
	s.lastTaskID++
	t := &Task{state: s, d: taskData{
		ID: strconv.Itoa(s.lastTaskID), Kind: kind, Summary: summary, SpawnTime: timeNow(),
	}}
	s.tasks[t.d.ID] = t
	return t
}

// Change returns the change with the given id, or nil.
func (s *State) Change(id string) *Change {
	s.mustBeLocked()
	return s.changes[id]
}

// Task returns the task with the given id, or nil.
func (s *State) Task(id string) *Task {
	s.mustBeLocked()
	return s.tasks[id]
}

// Changes returns all changes, oldest first.
func (s *State) Changes() []*Change {
	s.mustBeLocked()
	cs := make([]*Change, 0, len(s.changes))
	for _, c := range s.changes {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return idLess(cs[i].d.ID, cs[j].d.ID) })
	return cs
}

// ChangesInProgress returns the changes that are not ready, oldest first, so
// the agent can refuse to start a change that conflicts with one of them.
func (s *State) ChangesInProgress() []*Change {
	var cs []*Change
	for _, c := range s.Changes() {
		if !c.IsReady() {
			cs = append(cs, c)
		}
	}
	return cs
}

// Prune drops the oldest ready changes, with their tasks, so that at most
// keep of them remain. Changes in progress are never dropped, nor is a ready
// change that a change in progress still waits for (and it does not count
// towards keep). Tasks that belong to no change are dropped too.
func (s *State) Prune(keep int) {
	s.writing()
	var ready []*Change
	waited := map[string]bool{}
	for _, c := range s.Changes() {
		if c.IsReady() {
			ready = append(ready, c)
			continue
		}
		for _, t := range c.Tasks() {
			for _, id := range t.d.WaitFor {
				waited[id] = true
			}
		}
	}
	ready = slices.DeleteFunc(ready, func(c *Change) bool { return c.waitedOn(waited) })
	for i := 0; i < len(ready)-max(keep, 0); i++ {
		delete(s.changes, ready[i].d.ID)
	}
	s.dropOrphanTasks()
}

// dropOrphanTasks removes tasks whose change is gone or was never set, and
// WaitFor references to removed tasks.
func (s *State) dropOrphanTasks() {
	for id, t := range s.tasks {
		if s.changes[t.d.Change] == nil {
			delete(s.tasks, id)
		}
	}
	for _, t := range s.tasks {
		kept := t.d.WaitFor[:0]
		for _, id := range t.d.WaitFor {
			if s.tasks[id] != nil {
				kept = append(kept, id)
			}
		}
		t.d.WaitFor = kept
	}
}

// idLess orders the decimal ids "2" < "10".
func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// customData holds JSON values by key, for the state, a change or a task.
type customData map[string]json.RawMessage

func (d customData) get(key string, v any) error {
	raw, ok := d[key]
	if !ok {
		return fmt.Errorf("%w for key %q", ErrNoState, key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("cannot decode state entry %q: %w", key, err)
	}
	return nil
}

func (d *customData) set(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("internal error: cannot encode state entry %q: %w", key, err))
	}
	if bytes.Equal(raw, []byte("null")) {
		delete(*d, key)
		return
	}
	if *d == nil {
		*d = customData{}
	}
	(*d)[key] = raw
}
