package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
)

// Bounds of the applied-commands record. A command whose expiry is more
// than appliedGrace past can be forgotten: Verify refuses it anyway.
const (
	appliedGrace = 24 * time.Hour
	maxApplied   = 10000
)

// appliedRecord is what the device remembers of a command it accepted.
type appliedRecord struct {
	Expiry   time.Time `json:"expiry"`
	Recorded time.Time `json:"recorded"`
	// Final is the command's final event; nil while it is being applied.
	Final *Event `json:"final,omitempty"`
}

type appliedFile struct {
	Commands map[string]*appliedRecord `json:"commands"`
}

// appliedLog is the persisted record of applied commands (applied.json).
type appliedLog struct {
	path string
	m    map[string]*appliedRecord
}

func loadApplied(path string) (*appliedLog, error) {
	a := &appliedLog{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the applied commands: %w", err)
	}
	var f appliedFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("cannot read the applied commands from %s: %w", path, err)
	}
	a.m = f.Commands
	for id, r := range a.m {
		if r == nil {
			delete(a.m, id)
		}
	}
	return a, nil
}

func (a *appliedLog) get(id string) *appliedRecord { return a.m[id] }

// put records id and writes the file, forgetting old records first.
func (a *appliedLog) put(id string, r *appliedRecord) error {
	if a.m == nil {
		a.m = make(map[string]*appliedRecord)
	}
	a.m[id] = r
	a.prune(timeNow(), id)
	b, err := json.Marshal(appliedFile{Commands: a.m})
	if err != nil {
		return fmt.Errorf("internal error: cannot encode the applied commands: %w", err)
	}
	return atomicfile.WriteFile(a.path, b, 0o600)
}

// prune drops the records of commands expired more than appliedGrace ago,
// then the oldest ones beyond maxApplied; it keeps keep.
func (a *appliedLog) prune(now time.Time, keep string) {
	for id, r := range a.m {
		if id != keep && r.Final != nil && !r.Expiry.IsZero() && now.Sub(r.Expiry) > appliedGrace {
			delete(a.m, id)
		}
	}
	if len(a.m) <= maxApplied {
		return
	}
	ids := make([]string, 0, len(a.m))
	for id := range a.m {
		if id != keep {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return a.m[ids[i]].Recorded.Before(a.m[ids[j]].Recorded) })
	for _, id := range ids[:len(a.m)-maxApplied] {
		delete(a.m, id)
	}
}

// interrupted lists the commands recorded as being applied, in id order.
func (a *appliedLog) interrupted() []string {
	var ids []string
	for id, r := range a.m {
		if r.Final == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
