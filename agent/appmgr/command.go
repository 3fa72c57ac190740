package appmgr

import "paddock.dev/paddock/agent/state"

// CommandKey is the key, in a change's data, of the id of the fleet
// command that asked for the change: after a restart the fleet link finds
// the change by it and answers the command with the change's outcome.
const CommandKey = "fleet-command"

// setCommand records in chg the fleet command that asked for it, if any;
// the state must be locked.
func setCommand(chg *state.Change, command string) {
	if command != "" {
		chg.Set(CommandKey, command)
	}
}

// RevertFor is Revert for the fleet command with the given id, which the
// change records.
func (m *Manager) RevertFor(name, command string) (string, error) {
	return m.revert(name, command)
}

// RemoveFor is Remove for the fleet command with the given id, which the
// change records.
func (m *Manager) RemoveFor(name, command string) (string, error) {
	return m.remove(name, command)
}
