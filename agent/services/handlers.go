package services

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
)

// disabledKey is where the state keeps the services that 'paddock stop'
// stopped: a sorted list of APP.SVC.
const disabledKey = "services-disabled"

// disabled returns the services stopped by hand.
func (m *Manager) disabled() map[string]bool {
	m.st.Lock()
	defer m.st.Unlock()
	return m.disabledLocked()
}

func (m *Manager) disabledLocked() map[string]bool {
	var list []string
	if err := m.st.Get(disabledKey, &list); err != nil && !errors.Is(err, state.ErrNoState) {
		m.log.Error("cannot read the stopped services from the state", "err", err)
	}
	out := map[string]bool{}
	for _, k := range list {
		out[k] = true
	}
	return out
}

// setEnabledLocked records whether each of keys is enabled; the state must be locked.
func (m *Manager) setEnabledLocked(keys []string, enabled bool) {
	d := m.disabledLocked()
	for _, k := range keys {
		if enabled {
			delete(d, k)
		} else {
			d[k] = true
		}
	}
	list := make([]string, 0, len(d))
	for k := range d {
		list = append(list, k)
	}
	sort.Strings(list)
	m.st.Set(disabledKey, list)
}

// Verbs of 'paddock start|stop|restart', the kinds of their changes.
var verbs = map[string]string{"start": "Start", "stop": "Stop", "restart": "Restart"}

// StartServices starts the services that target (APP or APP.SVC) names and keeps
// them enabled across restarts; it returns the id of its change.
func (m *Manager) StartServices(target string) (string, error) { return m.change("start", target) }

// StopServices stops the services that target names and keeps them stopped,
// across agent restarts and boots, until Start; it returns the id of its
// change.
func (m *Manager) StopServices(target string) (string, error) { return m.change("stop", target) }

// RestartServices stops, then starts the services that target names; it returns
// the id of its change.
func (m *Manager) RestartServices(target string) (string, error) { return m.change("restart", target) }

// change makes the change of verb for target.
func (m *Manager) change(verb, target string) (string, error) {
	app, svc, err := splitTarget(target)
	if err != nil {
		return "", err
	}
	keys, err := m.targets(app, svc)
	if err != nil {
		return "", fmt.Errorf("cannot %s %s: %w", verb, target, err)
	}
	m.st.Lock()
	defer m.st.Unlock()
	if err := m.conflicts.Check(manager.AppKey(app)); err != nil {
		return "", fmt.Errorf("cannot %s %s: %w", verb, target, err)
	}
	chg := m.st.NewChange(verb, fmt.Sprintf("%s %s", verbs[verb], target))
	manager.Touch(chg, manager.AppKey(app))
	chg.Set("app-name", app)
	t := m.st.NewTask(verb+"-services", fmt.Sprintf("%s %s", verbs[verb], target))
	t.Set("services", keys)
	chg.AddTask(t)
	m.wake()
	return chg.ID(), nil
}

// targets returns the services of app's current revision that svc names
// (all of them for "").
func (m *Manager) targets(app, svc string) ([]string, error) {
	rev, err := currentRevision(app)
	if err != nil {
		return nil, err
	}
	mf, err := loadManifest(app, rev)
	if err != nil {
		return nil, err
	}
	var keys []string
	for name := range daemons(mf) {
		if svc == "" || name == svc {
			keys = append(keys, app+"."+name)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		if svc != "" {
			return nil, fmt.Errorf("%s has %w %q (see 'paddock services %s')", app, ErrNoService, svc, app)
		}
		return nil, fmt.Errorf("%s has no services (%w: none of its commands is a daemon)", app, ErrNoService)
	}
	return keys, nil
}

func (m *Manager) addHandlers() {
	if m.runner == nil {
		return
	}
	m.runner.AddHandler("start-services", m.doStart, nil)
	m.runner.AddHandler("stop-services", m.doStop, nil)
	m.runner.AddHandler("restart-services", m.doRestart, nil)
}

// taskServices returns the services a task works on, and their app.
func (m *Manager) taskServices(t *state.Task) (string, []*service, error) {
	m.st.Lock()
	var keys []string
	err := t.Get("services", &keys)
	var app string
	t.Change().Get("app-name", &app)
	m.st.Unlock()
	if err != nil || app == "" {
		return "", nil, fmt.Errorf("internal error: task %s names no services", t.ID())
	}
	// The services of a revision made current a moment ago are known once synced.
	if rev, err := currentRevision(app); err == nil {
		if err := m.syncApp(app, rev, false); err != nil {
			return "", nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var svcs []*service
	for _, k := range keys {
		if s := m.svcs[k]; s != nil {
			svcs = append(svcs, s)
		}
	}
	return app, svcs, nil
}

func (m *Manager) doStart(t *state.Task) error {
	app, svcs, err := m.taskServices(t)
	if err != nil {
		return err
	}
	m.enable(t, svcs, true)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range svcs {
		if s.run == nil {
			s.pending, s.restarts, s.quick = true, 0, 0
			s.cancelTimerLocked()
		}
	}
	return m.startPendingLocked(app)
}

func (m *Manager) doStop(t *state.Task) error {
	_, svcs, err := m.taskServices(t)
	if err != nil {
		return err
	}
	m.enable(t, svcs, false)
	return m.stopAll(svcs)
}

func (m *Manager) doRestart(t *state.Task) error {
	if err := m.doStop(t); err != nil {
		return err
	}
	return m.doStart(t)
}

// enable records the services of svcs enabled or not, in the state and in memory.
func (m *Manager) enable(t *state.Task, svcs []*service, enabled bool) {
	var keys []string
	m.mu.Lock()
	for _, s := range svcs {
		s.enabled = enabled
		keys = append(keys, s.key())
	}
	m.mu.Unlock()
	m.st.Lock()
	defer m.st.Unlock()
	m.setEnabledLocked(keys, enabled)
	if !enabled {
		t.Logf("%s stay stopped until 'paddock start'", joinKeys(keys))
	}
}

func joinKeys(keys []string) string {
	keys = slices.Clone(keys)
	sort.Strings(keys)
	return fmt.Sprint(keys)
}
