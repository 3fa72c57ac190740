package ifacemgr

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
)

// The tests in this file check the interface manager's logic against a
// fake app manager (fake_test.go); cmd/paddock's interface tests run it in
// a real agent, as root.

type fixture struct {
	t      *testing.T
	st     *state.State
	runner *state.Runner
	env    manager.Env
	apps   *fakeApps
	m      *Manager
}

func newFixture(t *testing.T, g *gadget.Gadget) *fixture {
	f := &fixture{t: t, st: statetest.Open(t), apps: newFakeApps()}
	f.apps.gadget = g
	f.runner = state.NewRunner(f.st)
	f.env = manager.NewEnv(f.st, f.runner, slog.New(slog.DiscardHandler))
	f.m = New(f.env, f.apps)
	return f
}

// gadgetWith parses a gadget.yaml with the given slots and connections sections.
func gadgetWith(t *testing.T, extra string) *gadget.Gadget {
	t.Helper()
	g, err := gadget.Parse([]byte(`volumes:
  pc:
    schema: gpt
    structures:
      - {name: data, role: system-data, type: linux, size: 16M, filesystem: ext4}
`+extra), "gadget.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const oneSerial = `slots:
  serial1: {interface: serial-port, path: /dev/ttyS1}
`

// run runs the change id to its end and returns its status.
func (f *fixture) run(id string) (state.Status, error) {
	f.t.Helper()
	for range 20 {
		if err := f.runner.Ensure(); err != nil {
			f.t.Fatal(err)
		}
		f.st.Lock()
		chg := f.st.Change(id)
		status, err := chg.Status(), chg.Err()
		f.st.Unlock()
		if status.Ready() {
			return status, err
		}
	}
	f.t.Fatalf("change %s did not finish", id)
	return 0, nil
}

// table describes the plugs as 'paddock connections' lists them: plug=slot(by).
func (f *fixture) table(app string) string {
	f.t.Helper()
	conns, err := f.m.Connections(app)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, c := range conns {
		s := c.Plug + "=" + c.Slot
		if c.By != "" {
			s += "(" + c.By + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func (f *fixture) ensure() {
	f.t.Helper()
	if err := f.m.Ensure(); err != nil {
		f.t.Fatal(err)
	}
}

func TestAutoAndGadgetConnections(t *testing.T) {
	g := gadgetWith(t, oneSerial+`connections:
  - {plug: "sensor:serial-port", slot: serial1}
`)
	f := newFixture(t, g)
	// The gadget's connection applies when sensor arrives; hello's
	// serial-port waits for an operator; network connects by itself.
	f.apps.install("sensor", 1, "network", "serial-port")
	f.apps.install("hello", 1, "network", "serial-port")
	if got, want := strings.Join(f.apps.generated["sensor"], " "), "network= serial-port=gadget:serial1"; got != want {
		t.Errorf("sensor's policies at install: got %s, want %s", got, want)
	}
	if got, want := strings.Join(f.apps.generated["hello"], " "), "network="; got != want {
		t.Errorf("hello's policies at install: got %s, want %s", got, want)
	}
	f.ensure()
	want := "hello:network=:network(auto) sensor:network=:network(auto) hello:serial-port= sensor:serial-port=serial1(gadget)"
	if got := f.table(""); got != want {
		t.Errorf("got connections %s, want %s", got, want)
	}
	// A refresh keeps the connections; a plug it drops loses its connection.
	f.apps.install("sensor", 2, "serial-port")
	f.ensure()
	if got, want := f.table("sensor"), "sensor:serial-port=serial1(gadget)"; got != want {
		t.Errorf("after a refresh without network: got %s, want %s", got, want)
	}
	f.st.Lock()
	_, kept := f.m.load().Connections["sensor:network"]
	f.st.Unlock()
	if kept {
		t.Error("the connection of the dropped network plug is still recorded")
	}
	// An app removed is forgotten; installed again, it arrives again.
	f.apps.remove("sensor")
	f.ensure()
	f.st.Lock()
	rec := f.m.load()
	f.st.Unlock()
	if rec.Arrived["sensor"] || len(rec.Connections) != 1 {
		t.Errorf("after sensor's remove: got %+v, want only hello's network recorded", rec)
	}
}

func TestRefreshLeavesNewHardwarePlugUnconnected(t *testing.T) {
	g := gadgetWith(t, oneSerial+`connections:
  - {plug: "sensor:serial-port", slot: serial1}
`)
	f := newFixture(t, g)
	f.apps.install("sensor", 1, "network")
	f.ensure()
	// The refresh adds serial-port: the gadget's connection was for the
	// app's arrival, and a hardware plug never connects by itself.
	f.apps.install("sensor", 2, "network", "serial-port")
	if got := strings.Join(f.apps.generated["sensor"], " "); strings.Contains(got, "serial-port") {
		t.Errorf("refresh policies: got %s, want no serial-port", got)
	}
	f.ensure()
	if got, want := f.table("sensor"), "sensor:network=:network(auto) sensor:serial-port="; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestConnectDisconnect(t *testing.T) {
	f := newFixture(t, gadgetWith(t, oneSerial))
	f.apps.install("hello", 1, "network", "serial-port")
	id, err := f.m.Connect("hello:serial-port", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if status, err := f.run(id); status != state.DoneStatus {
		t.Fatalf("connect: got %s %v, want Done", status, err)
	}
	if got, want := strings.Join(f.apps.generated["hello"], " "), "network= serial-port=gadget:serial1"; got != want {
		t.Errorf("policies after connect: got %s, want %s", got, want)
	}
	if got, want := f.table("hello"), "hello:network=:network(auto) hello:serial-port=serial1(operator)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Disconnecting an auto-connected plug keeps it disconnected.
	for _, plug := range []string{"hello:serial-port", "hello:network"} {
		id, err = f.m.Disconnect(plug, "")
		if err != nil {
			t.Fatal(err)
		}
		if status, err := f.run(id); status != state.DoneStatus {
			t.Fatalf("disconnect %s: got %s %v, want Done", plug, status, err)
		}
	}
	f.ensure()
	if got := f.apps.generated["hello"]; len(got) != 0 {
		t.Errorf("policies after disconnects: got %v, want none connected", got)
	}
	if got, want := f.table("hello"), "hello:network= hello:serial-port="; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Connected again by an operator.
	id, err = f.m.Connect("hello:network", "", "")
	if err != nil {
		t.Fatal(err)
	}
	f.run(id)
	if got, want := f.table("hello"), "hello:network=:network(operator) hello:serial-port="; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestFailedConnectUndone fails the regeneration of the policies: the
// change is undone, the connection is not recorded, and the policies are
// resolved again as they were.
func TestFailedConnectUndone(t *testing.T) {
	f := newFixture(t, gadgetWith(t, oneSerial))
	f.apps.install("hello", 1, "network", "serial-port")
	f.ensure()
	before := f.table("hello")
	f.apps.failRegen = 1
	id, err := f.m.Connect("hello:serial-port", "serial1", "")
	if err != nil {
		t.Fatal(err)
	}
	status, err := f.run(id)
	if status != state.ErrorStatus || !errors.Is(err, errFake) && !strings.Contains(err.Error(), "fake failure") {
		t.Fatalf("got %s %v, want Error with the fake failure", status, err)
	}
	if got := f.table("hello"); got != before {
		t.Errorf("after the undo: got %s, want %s", got, before)
	}
	if got, want := strings.Join(f.apps.generated["hello"], " "), "network="; got != want {
		t.Errorf("policies after the undo: got %s, want %s", got, want)
	}
	if f.apps.regens != 2 {
		t.Errorf("got %d regenerations, want 2 (the failed one and the undo's)", f.apps.regens)
	}
}

func TestConnectRefused(t *testing.T) {
	twoSerial := `slots:
  serial1: {interface: serial-port, path: /dev/ttyS1}
  serial2: {interface: serial-port, path: /dev/ttyS2}
  bus: {interface: i2c, path: /dev/i2c-1}
`
	tests := []struct {
		name, gadget, plug, slot string
		want                     []string
		notInstalled             bool
	}{
		{"no such app", oneSerial, "other:serial-port", "", []string{"other is not installed"}, true},
		{"no such plug", oneSerial, "hello:i2c", "", []string{"hello has no plug i2c", "network, serial-port"}, false},
		{"bad plug", oneSerial, "hello", "", []string{"invalid plug"}, false},
		{"two slots", twoSerial, "hello:serial-port", "", []string{"2 serial-port slots", "serial1, serial2"}, false},
		{"no slot", "", "hello:serial-port", "", []string{"has no serial-port slot"}, false},
		{"slot of another interface", twoSerial, "hello:serial-port", "bus", []string{"bus is a i2c slot", "serial1, serial2"}, false},
		{"unknown slot", twoSerial, "hello:serial-port", "serial9", []string{"no slot serial9"}, false},
		{"system plug to a gadget slot", twoSerial, "hello:network", "serial1", []string{"system's slot :network"}, false},
		{"connected already", oneSerial, "hello:network", "", []string{"connected to :network already"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, gadgetWith(t, tt.gadget))
			f.apps.install("hello", 1, "network", "serial-port")
			_, err := f.m.Connect(tt.plug, tt.slot, "")
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to say %q", err, w)
				}
			}
			if errors.Is(err, ErrNotInstalled) != tt.notInstalled || !tt.notInstalled && !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want refused (or not installed: %v)", err, tt.notInstalled)
			}
			f.st.Lock()
			n := len(f.st.Changes())
			f.st.Unlock()
			if n != 0 {
				t.Errorf("got %d changes, want none", n)
			}
		})
	}
	f := newFixture(t, gadgetWith(t, oneSerial))
	f.apps.install("hello", 1, "network", "serial-port")
	if _, err := f.m.Disconnect("hello:serial-port", ""); !errors.Is(err, ErrRefused) {
		t.Errorf("disconnect of a plug not connected: got %v, want refused", err)
	}
}

// TestConnectConflicts: a connect waits for no change of the same app: it
// is refused while one (an install) is in progress.
func TestConnectConflicts(t *testing.T) {
	f := newFixture(t, gadgetWith(t, oneSerial))
	f.apps.install("hello", 1, "network", "serial-port")
	f.st.Lock()
	chg := f.st.NewChange("refresh", "Refresh hello")
	manager.Touch(chg, manager.AppKey("hello"))
	chg.AddTask(f.st.NewTask("nothing", "Wait"))
	f.st.Unlock()
	_, err := f.m.Connect("hello:serial-port", "", "")
	if !errors.Is(err, manager.ErrInProgress) || !strings.Contains(err.Error(), "Refresh hello") {
		t.Errorf("got %v, want a conflict with the refresh", err)
	}
	// And an install waits for a connect: the connect's change holds the app.
	f.st.Lock()
	chg.Abort()
	chg.Tasks()[0].SetStatus(state.HoldStatus)
	f.st.Unlock()
	id, err := f.m.Connect("hello:serial-port", "", "")
	if err != nil {
		t.Fatal(err)
	}
	f.st.Lock()
	err = f.env.Conflicts.Check(manager.AppKey("hello"))
	keys := manager.Touches(f.st.Change(id))
	f.st.Unlock()
	if !errors.Is(err, manager.ErrInProgress) {
		t.Errorf("got %v, want the connect to hold app:hello", err)
	}
	if !slices.Contains(keys, "connection:hello:serial-port=serial1") {
		t.Errorf("got keys %v, want the connection's", keys)
	}
}

// TestRestartKeepsConnections opens the state again with a new manager:
// the connections are read back.
func TestRestartKeepsConnections(t *testing.T) {
	f := newFixture(t, gadgetWith(t, oneSerial))
	f.apps.install("hello", 1, "network", "serial-port")
	id, err := f.m.Connect("hello:serial-port", "", "")
	if err != nil {
		t.Fatal(err)
	}
	f.run(id)
	m2 := New(manager.NewEnv(f.st, state.NewRunner(f.st), slog.New(slog.DiscardHandler)), f.apps)
	f.m = m2
	if got, want := f.table("hello"), "hello:network=:network(auto) hello:serial-port=serial1(operator)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestConnectContent connects a content plug to another app's slot: the
// policies are resolved with the folder that app shares.
func TestConnectContent(t *testing.T) {
	f := newFixture(t, nil)
	f.apps.installManifest(&manifest.Manifest{Name: "b", Version: "1", Type: manifest.TypeApp,
		Slots: map[string]*manifest.Slot{"out": {Interface: "content", Path: "shared", Write: true}},
		Apps:  map[string]*manifest.App{"b": {Command: "bin/b"}}}, 1)
	f.apps.installManifest(&manifest.Manifest{Name: "a", Version: "1", Type: manifest.TypeApp,
		Plugs: map[string]*manifest.Plug{"media": {Interface: "content"}},
		Apps:  map[string]*manifest.App{"a": {Command: "bin/a"}}}, 1)
	for _, tc := range []struct{ slot, want string }{
		{"", "APP:SLOT"}, {"b:nothing", "b has no content slot nothing"}, {"a:out", "its own slot"}, {"c:out", "c is not installed"},
	} {
		if _, err := f.m.Connect("a:media", tc.slot, ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("connect a:media to %q: got %v, want a refusal saying %q", tc.slot, err, tc.want)
		}
	}
	id, err := f.m.Connect("a:media", "b:out", "")
	if err != nil {
		t.Fatal(err)
	}
	if status, err := f.run(id); status != state.DoneStatus {
		t.Fatalf("got %s %v, want Done", status, err)
	}
	if got := strings.Join(f.apps.generated["a"], " "); got != "media=b:out" {
		t.Errorf("a's policies: got %s, want media connected to b:out", got)
	}
	f.st.Lock()
	c := f.m.load().Connections["a:media"]
	f.st.Unlock()
	if c.Content == nil || c.Content.App != "b" || !c.Content.Write || !strings.HasSuffix(c.Content.Source, "/b/common/shared") {
		t.Errorf("recorded content: got %+v, want b's common/shared, writable", c.Content)
	}
}
