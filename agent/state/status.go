package state

import "fmt"

// Status is the state of a task, or the status derived for a change from its
// tasks. It is persisted as a word ("Doing"), not a number, so the state file
// stays readable and survives reordering of the constants.
type Status int

// The zero Status is DoStatus, so a new task waits to run.
const (
	// DoStatus means the task waits to run (its WaitFor tasks may not be done yet).
	DoStatus Status = iota
	// DoingStatus means the do handler is running, or was when the process stopped.
	DoingStatus
	// DoneStatus means the do handler succeeded.
	DoneStatus
	// UndoStatus means the task is done and waits to be undone.
	UndoStatus
	// UndoingStatus means the undo handler is running, or was when the process stopped.
	UndoingStatus
	// UndoneStatus means the undo handler succeeded.
	UndoneStatus
	// HoldStatus means the task will not run: its change was rolled back before it started.
	HoldStatus
	// ErrorStatus means the do or undo handler failed; the task log says why.
	ErrorStatus

	statusCount
)

var statusNames = [statusCount]string{"Do", "Doing", "Done", "Undo", "Undoing", "Undone", "Hold", "Error"}

// String returns the status as a word, such as "Doing".
func (s Status) String() string {
	if s < 0 || s >= statusCount {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// Ready reports whether s is final: nothing more will run for a task or a
// change in this status.
func (s Status) Ready() bool {
	switch s {
	case DoneStatus, UndoneStatus, HoldStatus, ErrorStatus:
		return true
	}
	return false
}

// MarshalText encodes s as its word; JSON uses it.
func (s Status) MarshalText() ([]byte, error) {
	if s < 0 || s >= statusCount {
		return nil, fmt.Errorf("internal error: invalid status %d", int(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText decodes a status word written by MarshalText.
func (s *Status) UnmarshalText(text []byte) error {
	for i, name := range statusNames {
		if string(text) == name {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", text)
}
