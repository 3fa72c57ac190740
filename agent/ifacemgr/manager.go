// Package ifacemgr is the agent's interface manager: it keeps the
// connections of apps' plugs to slots (the gadget's hardware slots, and
// the system's slots of interfaces such as network) in the state, makes
// them when an app arrives (auto-connect and the gadget's connections),
// connects and disconnects plugs as changes of tasks on request, and
// regenerates the policies of an app whenever its connections change.
// The app manager resolves policies with the same connections (Effective)
// at install, refresh and start-up.
package ifacemgr

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
)

// stateKey is where the manager keeps its record in the state.
const stateKey = "interfaces"

// Apps is what the interface manager asks of the app manager (appmgr.Manager).
type Apps interface {
	List() []apitypes.AppInfo
	// CurrentManifest returns the manifest kept of the app's current
	// revision, and that revision.
	CurrentManifest(name string) (*manifest.Manifest, int, error)
	// PreviousManifest returns the manifest kept of the revision before
	// the current one, or nil.
	PreviousManifest(name string) (*manifest.Manifest, error)
	// Gadget returns the device's gadget package and its kept gadget.yaml.
	Gadget() (string, *gadget.Gadget, error)
	// Regenerate resolves and compiles again the policies of every kept
	// revision of the app, with the connections SetConnections returns,
	// and makes its running commands follow the current revision's; it
	// returns the processes it stopped.
	Regenerate(name string) (stopped []int, err error)
	// SetConnections gives the app manager the connections its policies
	// are resolved with.
	SetConnections(func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection)
	// SetRecorder makes r the handler of the tasks of the app manager's
	// changes that record the connections (appmgr.Recorder).
	SetRecorder(r recorder)
}

// recorder is appmgr.Recorder: the tasks of an install, refresh, revert
// or remove that record what it made of an app's connections.
type recorder = interface {
	RecordConnections(t *state.Task, app string) error
	UndoRecordConnections(t *state.Task, app string) error
	ForgetConnections(t *state.Task, app string) error
}

// Manager keeps the connections of plugs to slots.
type Manager struct {
	st        *state.State
	log       *slog.Logger
	wake      func()
	conflicts *manager.Conflicts
	apps      Apps

	// mu guards cache, the record as the state holds it, which the app
	// manager's policy resolution reads with the state locked or not.
	mu    sync.Mutex
	cache *record
	// settled is the current revision of each app whose connections
	// Ensure recorded in this run of the agent.
	settled map[string]int
}

var (
	_ manager.Manager  = (*Manager)(nil)
	_ manager.Reporter = (*Manager)(nil)
	_ recorder         = (*Manager)(nil)
)

// New returns the interface manager of env over the app manager apps,
// registers its task handlers, gives apps its connections and records
// them as apps' changes make them (settle.go).
func New(env manager.Env, apps Apps) *Manager {
	m := &Manager{st: env.State, log: env.Log, wake: env.Wake, conflicts: env.Conflicts, apps: apps, settled: map[string]int{}}
	if m.wake == nil {
		m.wake = func() {}
	}
	if m.conflicts == nil {
		m.conflicts = manager.NewConflicts(m.st)
	}
	m.st.Lock()
	m.cache = m.load()
	m.st.Unlock()
	m.addHandlers(env.Runner)
	apps.SetConnections(m.policyConnections)
	apps.SetRecorder(m)
	return m
}

// load returns the record kept in the state; the state must be locked.
func (m *Manager) load() *record {
	rec := newRecord()
	if err := m.st.Get(stateKey, rec); err != nil && !errors.Is(err, state.ErrNoState) {
		// The state file was checked when it was opened; this is a bug.
		panic(fmt.Sprintf("internal error: cannot read the connections from the state: %v", err))
	}
	for _, mp := range []*map[string]bool{&rec.Disconnected, &rec.Arrived} {
		if *mp == nil {
			*mp = map[string]bool{}
		}
	}
	if rec.Connections == nil {
		rec.Connections = map[string]Connection{}
	}
	return rec
}

// save records rec in the state and the cache; the state must be locked.
func (m *Manager) save(rec *record) {
	m.st.Set(stateKey, rec)
	m.mu.Lock()
	m.cache = rec.clone()
	m.mu.Unlock()
}

// Effective returns the connections the policies of app, described by mf,
// are resolved with, by plug, given the device's gadget g (nil: none).
func (m *Manager) Effective(app string, mf *manifest.Manifest, g *gadget.Gadget) map[string]Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return effective(m.cache, app, mf, g)
}

// policyConnections is what the app manager resolves policies with.
func (m *Manager) policyConnections(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection {
	eff := m.Effective(app, mf, g)
	out := make([]policy.Connection, 0, len(eff))
	for plug, c := range eff {
		pc := policy.Connection{Plug: plug, Interface: c.Interface}
		switch {
		case c.Content != nil:
			pc.Slot, pc.Content = c.Slot, c.Content
		case g != nil && g.Slots[c.Slot] != nil:
			pc.Slot = "gadget:" + c.Slot
			pc.Gadget = g.Slots[c.Slot]
		}
		out = append(out, pc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Plug < out[j].Plug })
	return out
}

// Ensure records the connections of apps whose changes did not record
// them (seeded apps, and those an older agent installed), and forgets
// those of removed apps whose remove did not: the changes of apps record
// them themselves (settle.go). It writes the state only when that changes
// what it holds; their policies were resolved with the same connections
// (Effective), and only a connection that went makes it regenerate the
// policies of the app's older revisions.
func (m *Manager) Ensure() error {
	apps := m.apps.List()
	installed := map[string]bool{}
	var g *gadget.Gadget
	var gerr error
	gadgetRead := false
	var errs []error
	for _, a := range apps {
		installed[a.Name] = true
		if a.Revision == 0 || a.Type != manifest.TypeApp || m.settled[a.Name] == a.Revision || m.busy(a.Name) {
			continue
		}
		if !gadgetRead {
			_, g, gerr = m.apps.Gadget()
			gadgetRead = true
			if gerr != nil {
				errs = append(errs, gerr)
			}
		}
		if err := m.settle(a.Name, g); err != nil {
			errs = append(errs, err)
			continue
		}
		m.settled[a.Name] = a.Revision
	}
	for app := range m.settled {
		if !installed[app] {
			delete(m.settled, app)
		}
	}
	m.st.Lock()
	rec := m.load()
	changed := false
	for app := range rec.Arrived {
		if !installed[app] && m.conflicts.Check(manager.AppKey(app)) == nil {
			changed = forget(rec, app) || changed
		}
	}
	if changed {
		m.save(rec)
	}
	m.st.Unlock()
	return errors.Join(errs...)
}

// busy reports whether a change of the app is in progress.
func (m *Manager) busy(app string) bool {
	m.st.Lock()
	defer m.st.Unlock()
	return m.conflicts.Check(manager.AppKey(app)) != nil
}

// settle records the effective connections of app's current revision.
func (m *Manager) settle(app string, g *gadget.Gadget) error {
	mf, _, err := m.apps.CurrentManifest(app)
	if err != nil {
		return err
	}
	m.st.Lock()
	rec := m.load()
	changed, dropped := settle(rec, app, mf, g)
	if changed {
		m.save(rec)
	}
	m.st.Unlock()
	if dropped {
		m.log.Info("connections of removed plugs dropped", "app", app)
		_, err := m.apps.Regenerate(app)
		return err
	}
	return nil
}
