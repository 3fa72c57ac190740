package ifacemgr

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/ota/manifest"
)

// Errors that callers map to answers.
var (
	// ErrRefused marks a request refused for what it asked: an unknown
	// plug, a slot of another interface, a plug connected already.
	ErrRefused = errors.New("refused")
	// ErrNotInstalled means the plug's app is not installed.
	ErrNotInstalled = errors.New("not installed")
)

type refusedError struct{ err error }

func (e refusedError) Error() string        { return e.err.Error() }
func (e refusedError) Unwrap() error        { return e.err }
func (e refusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error { return refusedError{fmt.Errorf(format, args...)} }

// commandKey is appmgr.CommandKey: the fleet command that asked for a change.
const commandKey = "fleet-command"

// Connect starts the change that connects the plug APP:PLUG to slot (""
// for the only slot that fits) and returns its id; command is the id of
// the fleet command that asks for it, or "".
func (m *Manager) Connect(plug, slot, command string) (string, error) {
	ref, err := ParsePlug(plug)
	if err != nil {
		return "", refusedError{err}
	}
	if slot != "" {
		if slot, err = ParseSlot(slot); err != nil {
			return "", refusedError{err}
		}
	}
	release, err := m.claim(ref, "connect")
	if err != nil {
		return "", err
	}
	defer release()
	iface, mf, g, err := m.declared(ref, "connect")
	if err != nil {
		return "", err
	}
	var content *policy.ContentSlot
	if isShare(iface) {
		slot, content, err = m.appSlot(ref, iface, slot)
	} else {
		slot, err = pickSlot(ref, iface, slot, g)
	}
	if err != nil {
		return "", err
	}
	cur, connected := m.Effective(ref.App, mf, g)[ref.Plug]
	switch {
	case connected && cur.Slot == slot:
		return "", refused("cannot connect %s: it is connected to %s already", ref, slot)
	case connected:
		return "", refused("cannot connect %s: it is connected to %s (disconnect it first with 'paddock disconnect %s')", ref, cur.Slot, ref)
	}
	return m.start("connect", ref, Connection{Interface: iface, Slot: slot, By: ByOperator, Content: content}, command,
		fmt.Sprintf("Connect %s to %s", ref, slot))
}

// Disconnect starts the change that disconnects the plug APP:PLUG and
// returns its id; command is as for Connect.
func (m *Manager) Disconnect(plug, command string) (string, error) {
	ref, err := ParsePlug(plug)
	if err != nil {
		return "", refusedError{err}
	}
	release, err := m.claim(ref, "disconnect")
	if err != nil {
		return "", err
	}
	defer release()
	_, mf, g, err := m.declared(ref, "disconnect")
	if err != nil {
		return "", err
	}
	cur, connected := m.Effective(ref.App, mf, g)[ref.Plug]
	if !connected {
		return "", refused("cannot disconnect %s: it is not connected", ref)
	}
	return m.start("disconnect", ref, cur, command, fmt.Sprintf("Disconnect %s from %s", ref, cur.Slot))
}

// declared returns the interface of the plug ref, which the current
// revision of its app must declare, with that revision's manifest and the
// device's gadget.
func (m *Manager) declared(ref PlugRef, verb string) (string, *manifest.Manifest, *gadget.Gadget, error) {
	if !m.installed(ref.App) {
		return "", nil, nil, fmt.Errorf("cannot %s %s: %s is %w (see 'paddock list')", verb, ref, ref.App, ErrNotInstalled)
	}
	mf, _, err := m.apps.CurrentManifest(ref.App)
	if err != nil {
		return "", nil, nil, fmt.Errorf("cannot %s %s: %w", verb, ref, err)
	}
	_, g, err := m.apps.Gadget()
	if err != nil {
		return "", nil, nil, fmt.Errorf("cannot %s %s: %w", verb, ref, err)
	}
	plugs := plugsOf(mf)
	iface, ok := plugs[ref.Plug]
	if !ok {
		have := "none"
		if len(plugs) > 0 {
			have = strings.Join(sortedPlugs(plugs), ", ")
		}
		return "", nil, nil, refused("cannot %s %s: %s has no plug %s (its plugs: %s)", verb, ref, ref.App, ref.Plug, have)
	}
	return iface, mf, g, nil
}

func (m *Manager) installed(app string) bool {
	for _, a := range m.apps.List() {
		if a.Name == app && a.Revision > 0 && a.Type == manifest.TypeApp {
			return true
		}
	}
	return false
}

// pickSlot checks that slot fits the plug ref of interface iface, or,
// when slot is "", picks the only slot that does: the gadget's only slot
// of that interface for a hardware plug, the system's slot otherwise.
func pickSlot(ref PlugRef, iface, slot string, g *gadget.Gadget) (string, error) {
	if !IsHardware(iface) {
		if slot != "" && slot != SystemSlot(iface) {
			return "", refused("cannot connect %s: a %s plug connects to the system's slot %s, not %s", ref, iface, SystemSlot(iface), slot)
		}
		return SystemSlot(iface), nil
	}
	candidates := slotsOf(g, iface)
	if slot != "" {
		s := (*gadget.Slot)(nil)
		if g != nil {
			s = g.Slots[slot]
		}
		switch {
		case s == nil:
			return "", refused("cannot connect %s: the gadget has no slot %s (%s)", ref, slot, offer(iface, candidates))
		case s.Interface != iface:
			return "", refused("cannot connect %s: slot %s is a %s slot, not %s (%s)", ref, slot, s.Interface, iface, offer(iface, candidates))
		}
		return slot, nil
	}
	switch len(candidates) {
	case 0:
		return "", refused("cannot connect %s: %s", ref, offer(iface, nil))
	case 1:
		return candidates[0], nil
	}
	return "", refused("cannot connect %s: the gadget has %d %s slots, name one: %s (like 'paddock connect %s %s')",
		ref, len(candidates), iface, strings.Join(candidates, ", "), ref, candidates[0])
}

// slotsOf returns the gadget's slots of iface, sorted.
func slotsOf(g *gadget.Gadget, iface string) []string {
	var out []string
	if g == nil {
		return nil
	}
	for name, s := range g.Slots {
		if s.Interface == iface {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// offer says which slots of iface the gadget offers.
func offer(iface string, slots []string) string {
	if len(slots) == 0 {
		return fmt.Sprintf("the device's gadget has no %s slot (see 'paddock interfaces')", iface)
	}
	return fmt.Sprintf("its %s slots: %s", iface, strings.Join(slots, ", "))
}

// claim reserves the app of the plug ref for a change about to be made,
// or says which change holds it. The caller releases it once the change
// exists, or will not be made.
func (m *Manager) claim(ref PlugRef, verb string) (release func(), err error) {
	release, err = m.conflicts.Reserve(fmt.Sprintf("another change of %s", ref.App), manager.AppKey(ref.App))
	if err != nil {
		return nil, fmt.Errorf("cannot %s %s: %w", verb, ref, err)
	}
	return release, nil
}

// start makes the change of kind connect or disconnect of the plug ref;
// the caller claimed its app.
func (m *Manager) start(kind string, ref PlugRef, c Connection, command, summary string) (string, error) {
	keys := []string{manager.AppKey(ref.App), manager.ConnectionKey(ref.String(), c.Slot)}
	m.st.Lock()
	defer m.st.Unlock()
	chg := m.st.NewChange(kind, summary)
	manager.Touch(chg, keys...)
	chg.Set("app-name", ref.App)
	chg.Set("plug", ref.String())
	chg.Set("connection", c)
	if command != "" {
		chg.Set(commandKey, command)
	}
	edit := m.st.NewTask(kind+"-plug", summary)
	gen := m.st.NewTask("regenerate-policies", fmt.Sprintf("Regenerate the security profiles of %q", ref.App))
	gen.WaitFor(edit)
	chg.AddTask(edit)
	chg.AddTask(gen)
	m.wake()
	return chg.ID(), nil
}

// taskKinds are the kinds of task of the interface manager's changes.
var taskKinds = []string{"connect-plug", "disconnect-plug", "regenerate-policies"}

func (m *Manager) addHandlers(r *state.Runner) {
	r.AddHandler("connect-plug", m.doEdit, m.undoEdit)
	r.AddHandler("disconnect-plug", m.doEdit, m.undoEdit)
	r.AddHandler("regenerate-policies", m.doRegenerate, nil)
}

// editSetup is what a change of a connection carries.
type editSetup struct {
	kind string
	ref  PlugRef
	conn Connection
}

func (m *Manager) setup(t *state.Task) (editSetup, error) {
	m.st.Lock()
	defer m.st.Unlock()
	chg := t.Change()
	s := editSetup{kind: chg.Kind()}
	var plug string
	if err := chg.Get("plug", &plug); err != nil {
		return s, fmt.Errorf("internal error: change %s lacks plug: %w", chg.ID(), err)
	}
	ref, err := ParsePlug(plug)
	if err != nil {
		return s, fmt.Errorf("internal error: change %s: %w", chg.ID(), err)
	}
	s.ref = ref
	if err := chg.Get("connection", &s.conn); err != nil {
		return s, fmt.Errorf("internal error: change %s lacks connection: %w", chg.ID(), err)
	}
	return s, nil
}

// before is how a plug was before a change, which its undo restores.
type before struct {
	Connection   *Connection `json:"connection,omitempty"`
	Disconnected bool        `json:"disconnected,omitempty"`
}

// doEdit records the connection or the disconnection in the state, after
// recording the app's effective connections (those made when it arrived
// may not be recorded yet). What was recorded of the plug before is kept
// in the task for undoEdit. The policies follow in the next task.
func (m *Manager) doEdit(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	if err := m.settleNow(s.ref.App); err != nil {
		return err
	}
	m.st.Lock()
	defer m.st.Unlock()
	rec := m.load()
	key := s.ref.String()
	var b before
	if t.Get("before", &b) != nil { // a repeated task keeps the first record
		if c, ok := rec.Connections[key]; ok {
			b.Connection = &c
		}
		b.Disconnected = rec.Disconnected[key]
		t.Set("before", b)
	}
	if s.kind == "connect" {
		rec.Connections[key] = s.conn
		delete(rec.Disconnected, key)
		t.Logf("%s connected to %s", key, s.conn.Slot)
	} else {
		delete(rec.Connections, key)
		rec.Disconnected[key] = true
		t.Logf("%s disconnected", key)
	}
	m.save(rec)
	return nil
}

// settleNow records the effective connections of app before a change
// edits them.
func (m *Manager) settleNow(app string) error {
	_, g, err := m.apps.Gadget()
	if err != nil {
		return err
	}
	mf, _, err := m.apps.CurrentManifest(app)
	if err != nil {
		return err
	}
	m.st.Lock()
	defer m.st.Unlock()
	rec := m.load()
	if changed, _ := settle(rec, app, mf, g); changed {
		m.save(rec)
	}
	return nil
}

// undoEdit puts back what was recorded of the plug, and the policies
// that go with it.
func (m *Manager) undoEdit(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	m.st.Lock()
	var b before
	if t.Get("before", &b) == nil {
		rec := m.load()
		key := s.ref.String()
		delete(rec.Connections, key)
		if b.Connection != nil {
			rec.Connections[key] = *b.Connection
		}
		delete(rec.Disconnected, key)
		if b.Disconnected {
			rec.Disconnected[key] = true
		}
		m.save(rec)
	}
	m.st.Unlock()
	return m.regenerate(t, s.ref.App)
}

func (m *Manager) doRegenerate(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	return m.regenerate(t, s.ref.App)
}

// regenerate resolves the app's policies again with its connections, and
// makes its running commands follow them; the task's log names the
// processes that were stopped.
func (m *Manager) regenerate(t *state.Task, app string) error {
	stopped, err := m.apps.Regenerate(app)
	if len(stopped) > 0 {
		m.st.Lock()
		t.Logf("stopped processes of %s that used a disconnected device: %v", app, stopped)
		m.st.Unlock()
	}
	if err != nil {
		return fmt.Errorf("cannot regenerate the security profiles of %s: %w", app, err)
	}
	return nil
}

// isShare reports whether plugs of iface connect to another app's slot
// (content).
func isShare(iface string) bool {
	i, ok := interfaces.Lookup(iface)
	return ok && i.Share != nil
}

// appSlot checks that slot (APP:SLOT) is a slot of interface iface that
// the installed app APP declares, and returns the folder it shares.
func (m *Manager) appSlot(ref PlugRef, iface, slot string) (string, *policy.ContentSlot, error) {
	app, name, ok := strings.Cut(slot, ":")
	if !ok || app == "" {
		return "", nil, refused("cannot connect %s: a %s plug connects to a slot of another app: name it as APP:SLOT", ref, iface)
	}
	if app == ref.App {
		return "", nil, refused("cannot connect %s: an app cannot connect to its own slot %s", ref, slot)
	}
	if !m.installed(app) {
		return "", nil, refused("cannot connect %s: %s is not installed (see 'paddock list')", ref, app)
	}
	mf, _, err := m.apps.CurrentManifest(app)
	if err != nil {
		return "", nil, fmt.Errorf("cannot connect %s: %w", ref, err)
	}
	if s := mf.Slots[name]; s == nil || s.Interface != iface {
		return "", nil, refused("cannot connect %s: %s has no %s slot %s", ref, app, iface, name)
	}
	content, err := policy.SharedFolder(mf, name)
	if err != nil {
		return "", nil, refusedError{fmt.Errorf("cannot connect %s: %w", ref, err)}
	}
	return slot, content, nil
}
