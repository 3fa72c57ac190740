package ifacemgr

import (
	"errors"
	"maps"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/manifest"
)

// The app manager's changes record what they make of an app's connections
// as tasks of their own (appmgr.Recorder), as snapd's interface manager
// adds its tasks to an install: a change that is done has made all of its
// state writes, and one that is undone leaves the record as it was. What
// the record held of the app before is kept in the task (recordBefore),
// and whether a connection went (recordDropped), which makes the
// policies of the app's older revisions resolve again.
const (
	recordBefore  = "connections-before"
	recordDropped = "connections-dropped"
)

// RecordConnections records the effective connections of the current
// revision of app, which the change of task t made current, and that the
// app arrived: the gadget's connections apply at its first arrival only.
func (m *Manager) RecordConnections(t *state.Task, app string) error {
	mf, _, err := m.apps.CurrentManifest(app)
	if err != nil {
		return err
	}
	if mf.Type != manifest.TypeApp {
		return nil
	}
	_, g, err := m.apps.Gadget()
	if err != nil {
		return err
	}
	m.st.Lock()
	rec := m.load()
	var b record
	if t.Get(recordBefore, &b) != nil { // a repeated task keeps the first
		t.Set(recordBefore, recordOf(rec, app))
	}
	changed, dropped := settle(rec, app, mf, g)
	if changed {
		m.save(rec)
	}
	if dropped {
		t.Set(recordDropped, true)
	}
	t.Get(recordDropped, &dropped)
	m.st.Unlock()
	if !dropped {
		return nil
	}
	m.log.Info("connections of removed plugs dropped", "app", app)
	if err := m.regenerate(t, app); err != nil {
		// A failed task is not undone: put back what it recorded.
		return errors.Join(err, m.UndoRecordConnections(t, app))
	}
	return nil
}

// UndoRecordConnections puts back what the record held of app before
// RecordConnections, and the policies that go with it.
func (m *Manager) UndoRecordConnections(t *state.Task, app string) error {
	m.st.Lock()
	var b record
	var dropped bool
	t.Get(recordDropped, &dropped)
	if t.Get(recordBefore, &b) == nil {
		rec := m.load()
		forget(rec, app)
		maps.Copy(rec.Connections, b.Connections)
		maps.Copy(rec.Disconnected, b.Disconnected)
		maps.Copy(rec.Arrived, b.Arrived)
		m.save(rec)
	}
	m.st.Unlock()
	if dropped {
		return m.regenerate(t, app)
	}
	return nil
}

// ForgetConnections drops what the record holds of app, which the remove
// of task t removed.
func (m *Manager) ForgetConnections(t *state.Task, app string) error {
	m.st.Lock()
	defer m.st.Unlock()
	rec := m.load()
	if forget(rec, app) {
		m.save(rec)
	}
	return nil
}

// recordOf returns what rec holds of app.
func recordOf(rec *record, app string) *record {
	out := newRecord()
	for ref, c := range rec.Connections {
		if a, _ := splitRef(ref); a == app {
			out.Connections[ref] = c
		}
	}
	for ref := range rec.Disconnected {
		if a, _ := splitRef(ref); a == app {
			out.Disconnected[ref] = true
		}
	}
	if rec.Arrived[app] {
		out.Arrived[app] = true
	}
	return out
}
