package state

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// stateJSON is the layout of the state file. Maps are encoded with sorted
// keys, so the same state always gives the same bytes and an unchanged
// checkpoint does not rewrite the file.
type stateJSON struct {
	Data         customData             `json:"data,omitempty"`
	Changes      map[string]*changeData `json:"changes,omitempty"`
	Tasks        map[string]*taskData   `json:"tasks,omitempty"`
	LastChangeID int                    `json:"last-change-id"`
	LastTaskID   int                    `json:"last-task-id"`
}

func (s *State) encode() ([]byte, error) {
	j := stateJSON{
		Data:         s.data,
		Changes:      make(map[string]*changeData, len(s.changes)),
		Tasks:        make(map[string]*taskData, len(s.tasks)),
		LastChangeID: s.lastChangeID,
		LastTaskID:   s.lastTaskID,
	}
	for id, c := range s.changes {
		j.Changes[id] = &c.d
	}
	for id, t := range s.tasks {
		j.Tasks[id] = &t.d
	}
	return json.Marshal(&j)
}

// decode loads raw into the empty state s and checks that changes and tasks
// refer to each other consistently, so that a damaged file is refused at
// Open rather than failing later in the runner.
func (s *State) decode(raw []byte) error {
	var j stateJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	s.data, s.lastChangeID, s.lastTaskID = j.Data, j.LastChangeID, j.LastTaskID
	for id, d := range j.Changes {
		if err := checkID("change", id, d.ID, s.lastChangeID); err != nil {
			return err
		}
		s.changes[id] = &Change{state: s, d: *d}
	}
	for id, d := range j.Tasks {
		if err := checkID("task", id, d.ID, s.lastTaskID); err != nil {
			return err
		}
		s.tasks[id] = &Task{state: s, d: *d}
	}
	return s.checkLinks()
}

func checkID(what, key, id string, last int) error {
	n, err := strconv.Atoi(key)
	if err != nil || n <= 0 || n > last || strconv.Itoa(n) != key {
		return fmt.Errorf("invalid %s id %q (last id %d)", what, key, last)
	}
	if id != key {
		return fmt.Errorf("%s %q has id %q", what, key, id)
	}
	return nil
}

func (s *State) checkLinks() error {
	for id, c := range s.changes {
		if len(slices.Compact(slices.Sorted(slices.Values(c.d.TaskIDs)))) != len(c.d.TaskIDs) {
			return fmt.Errorf("change %s lists a task twice", id)
		}
		for _, tid := range c.d.TaskIDs {
			if t := s.tasks[tid]; t == nil || t.d.Change != id {
				return fmt.Errorf("change %s lists task %s, which does not belong to it", id, tid)
			}
		}
	}
	for id, t := range s.tasks {
		if c := s.changes[t.d.Change]; t.d.Change != "" && (c == nil || !slices.Contains(c.d.TaskIDs, id)) {
			return fmt.Errorf("task %s belongs to change %s, which does not list it", id, t.d.Change)
		}
		for _, wid := range t.d.WaitFor {
			if s.tasks[wid] == nil {
				return fmt.Errorf("task %s waits for missing task %s", id, wid)
			}
		}
	}
	return nil
}
