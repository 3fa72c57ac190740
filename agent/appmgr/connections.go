package appmgr

import (
	"errors"
	"fmt"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
)

// ConnectionsFunc returns the connections that the policies of app,
// described by mf, are resolved with, given the device's gadget g (nil
// when it has none): the interface manager's (ifacemgr.Manager).
type ConnectionsFunc = func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection

// SetConnections makes f the source of the connections policies are
// resolved with, at install, refresh, start-up and Regenerate. Without it
// the plugs that auto-connect are connected.
func (m *Manager) SetConnections(f ConnectionsFunc) { m.connections = f }

// Recorder records the connections of apps in the state as the app
// manager's changes make them: the interface manager (ifacemgr.Manager).
// Each is the handler of a task of the change, so that a change that is
// done has made all of its state writes, and an undone one none. (An
// alias, as ConnectionsFunc is: the interface manager names the same type
// without importing this package.)
type Recorder = interface {
	// RecordConnections records, as task t of an install, refresh or
	// revert of app, the connections of its revision made current (those
	// its policies were resolved with), and that it arrived.
	RecordConnections(t *state.Task, app string) error
	// UndoRecordConnections puts back what RecordConnections changed.
	UndoRecordConnections(t *state.Task, app string) error
	// ForgetConnections forgets the connections of app, as task t of
	// the remove that removed it.
	ForgetConnections(t *state.Task, app string) error
}

// SetRecorder makes r record the connections as changes make them.
// Without it the tasks that record them do nothing.
func (m *Manager) SetRecorder(r Recorder) { m.recorder = r }

// recordTask returns the task that records the connections of app once a
// change made a revision of it current; the state must be locked.
func (m *Manager) recordTask(app string) *state.Task {
	return m.st.NewTask("record-connections", fmt.Sprintf("Record the connections of %q", app))
}

func (m *Manager) doRecordConnections(t *state.Task) error {
	return m.callRecorder(t, Recorder.RecordConnections)
}

func (m *Manager) undoRecordConnections(t *state.Task) error {
	return m.callRecorder(t, Recorder.UndoRecordConnections)
}

func (m *Manager) doForgetConnections(t *state.Task) error {
	return m.callRecorder(t, Recorder.ForgetConnections)
}

func (m *Manager) callRecorder(t *state.Task, f func(Recorder, *state.Task, string) error) error {
	if m.recorder == nil {
		return nil
	}
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	return f(m.recorder, t, s.name)
}

// connectionsOf returns the connections of the app described by mf; the
// state must be locked.
func (m *Manager) connectionsOf(mf *manifest.Manifest) ([]policy.Connection, error) {
	if m.connections == nil {
		return policy.AutoConnections(mf), nil
	}
	g, err := m.gadgetLocked()
	if err != nil {
		return nil, err
	}
	return m.connections(mf.Name, mf, g), nil
}

// CurrentManifest returns the manifest kept of the current revision of
// the app called name, and that revision.
func (m *Manager) CurrentManifest(name string) (*manifest.Manifest, int, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	m.st.Lock()
	app := m.apps()[name]
	m.st.Unlock()
	if app == nil || app.removing() {
		return nil, 0, fmt.Errorf("%s is %w (see 'paddock list')", name, ErrNotInstalled)
	}
	mf, err := m.be.KeptManifest(name, app.Current)
	return mf, app.Current, err
}

// PreviousManifest returns the manifest kept of the newest revision of the
// app called name older than its current one, or nil when none is kept:
// what a refresh changed of its plugs is told from it.
func (m *Manager) PreviousManifest(name string) (*manifest.Manifest, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.st.Lock()
	app := m.apps()[name]
	m.st.Unlock()
	if app == nil {
		return nil, fmt.Errorf("%s is %w (see 'paddock list')", name, ErrNotInstalled)
	}
	prev := app.Previous()
	if prev == nil {
		return nil, nil
	}
	return m.be.KeptManifest(name, prev.Revision)
}

// Regenerate resolves and compiles again the policies of every kept
// revision of the app called name, with its connections now, and makes
// the current revision's running commands follow theirs at once (device
// cgroup, AppArmor, node access; launch.ApplyPolicy): the interface
// manager calls it when the app's connections change. It returns the
// processes it stopped (those of a disconnected hardware plug).
func (m *Manager) Regenerate(name string) (stopped []int, err error) {
	m.st.Lock()
	app := m.apps()[name]
	if app == nil || app.removing() {
		m.st.Unlock()
		return nil, fmt.Errorf("cannot regenerate the profiles of %s: it is %w", name, ErrNotInstalled)
	}
	type gen struct {
		rev   int
		mf    *manifest.Manifest
		conns []policy.Connection
	}
	var gens []gen
	var errs []error
	for _, r := range app.Sequence {
		mf, err := m.be.KeptManifest(name, r.Revision)
		var conns []policy.Connection
		if err == nil {
			conns, err = m.connectionsOf(mf)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gens = append(gens, gen{r.Revision, mf, conns})
	}
	current := app.Current
	m.st.Unlock()
	// The current revision first: it is the one that runs.
	for _, g := range gens {
		if g.rev == current {
			old := m.be.Policies(name, g.rev, g.mf)
			if err := m.be.GenerateProfiles(g.rev, g.mf, m.Arch, g.conns); err != nil {
				return nil, err
			}
			if stopped, err = m.be.ApplyPolicies(name, g.rev, g.mf, old); err != nil {
				return stopped, err
			}
		}
	}
	for _, g := range gens {
		if g.rev != current {
			errs = append(errs, m.be.GenerateProfiles(g.rev, g.mf, m.Arch, g.conns))
		}
	}
	return stopped, errors.Join(errs...)
}
