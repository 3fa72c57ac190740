// Package manager is the contract between the agent and its managers
// (apps, and later interfaces, services, the base), in the manner of
// snapd's overlord.StateManager: each manager keeps one part of the
// device in line with the state, registers the task handlers of its
// changes, and records in each change what it touches so that one check
// (Conflicts) keeps two changes off the same thing.
package manager

import (
	"log/slog"

	"paddock.dev/paddock/agent/state"
)

// Manager is one part of the agent. The agent calls Ensure in its loop,
// when something woke it and every few seconds, before the task runner.
type Manager interface {
	// Ensure does what the manager must do between changes; an error is
	// logged and the loop goes on.
	Ensure() error
}

// StartUpper is a Manager with work to do once when the agent starts,
// before the API serves and interrupted changes resume.
type StartUpper interface {
	// StartUp brings the disk in line with the state after a boot or a
	// crash. An error is logged, and the agent starts anyway.
	StartUp() error
}

// Stopper is a Manager with work to do when the agent stops, after the
// last task ran.
type Stopper interface {
	Stop()
}

// Reporter is a Manager with a part in the state the agent reports to
// the fleet: the agent tells the fleet link whenever the JSON encoding of
// a report changes.
type Reporter interface {
	Report() any
}

// Env is what the agent gives each manager.
type Env struct {
	State  *state.State
	Runner *state.Runner
	Log    *slog.Logger
	// Wake asks the agent's loop to run now (a change was made); never nil.
	Wake func()
	// Conflicts is the agent's one conflict check, shared by its managers.
	Conflicts *Conflicts
}

// NewEnv returns the environment of managers over st and runner, whose
// Wake does nothing until the agent sets it.
func NewEnv(st *state.State, runner *state.Runner, log *slog.Logger) Env {
	return Env{State: st, Runner: runner, Log: log, Wake: func() {}, Conflicts: NewConflicts(st)}
}
