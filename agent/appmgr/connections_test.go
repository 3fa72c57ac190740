package appmgr

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/ifacemgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/manifest"
)

// The tests in this file check, on the fake backend, the app manager's
// side of connections and of the gadget package: the policies are
// resolved with what SetConnections gives, and the gadget is kept, found
// and never removed.

// pcGadgetYAML is a gadget.yaml with one serial slot; testGadgetYAML
// connects it to hello's serial-port plug.
const (
	pcGadgetYAML = `volumes:
  pc:
    schema: gpt
    structures:
      - {name: data, role: system-data, type: linux, size: 16M, filesystem: ext4}
slots:
  serial1: {interface: serial-port, path: /dev/ttyS1}
`
	testGadgetYAML = pcGadgetYAML + `connections:
  - {plug: "hello:serial-port", slot: serial1}
`
)

// pcGadget is a gadget.yaml with one serial slot.
func pcGadget(t *testing.T) *gadget.Gadget {
	t.Helper()
	g, err := gadget.Parse([]byte(pcGadgetYAML), "gadget.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// withGadget records pc, revision 1, as the device's gadget on the fake.
func withGadget(t *testing.T, f *fixture, fake *fakeBackend) *gadget.Gadget {
	g := pcGadget(t)
	rev := revisionOf(1, asserttest.Key(t, "pub"))
	rev.Type = manifest.TypeGadget
	f.installedOn(fake, &App{Name: "pc", Current: 1, Sequence: []Revision{rev}})
	fake.gadgets["pc/1"] = g
	return g
}

func TestGenerateProfilesUsesConnections(t *testing.T) {
	f, fake := fakeFixture(t)
	g := withGadget(t, f, fake)
	var gotApp string
	var gotGadget *gadget.Gadget
	f.m.SetConnections(func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection {
		gotApp, gotGadget = app, g
		return []policy.Connection{{Plug: "serial-port", Interface: "serial-port", Slot: "gadget:serial1", Gadget: g.Slots["serial1"]}}
	})
	mounted(fake)
	do, _ := f.m.handlers("generate-profiles")
	if err := do(f.taskOf("generate-profiles", "hello", nil, revisionOf(2, asserttest.Key(t, "pub")))); err != nil {
		t.Fatal(err)
	}
	if gotApp != "hello" || gotGadget != g {
		t.Errorf("got connections asked for %q with gadget %p, want hello with the kept gadget %p", gotApp, gotGadget, g)
	}
	if c := fake.connections["hello/2"]; len(c) != 1 || c[0].Slot != "gadget:serial1" {
		t.Errorf("got profiles generated with %+v, want the serial1 connection", c)
	}
}

func TestRegenerate(t *testing.T) {
	f, fake := fakeFixture(t)
	key1 := asserttest.Key(t, "pub")
	f.installedOn(fake, &App{Name: "hello", Current: 2, Sequence: []Revision{revisionOf(1, key1), revisionOf(2, key1)}})
	n := 0
	f.m.SetConnections(func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection {
		n++
		return []policy.Connection{{Plug: "network", Interface: "network"}}
	})
	fake.calls = nil
	if _, err := f.m.Regenerate("hello"); err != nil {
		t.Fatal(err)
	}
	// The current revision first, its running commands made to follow.
	want := "Policies hello 2\nGenerateProfiles hello 2 amd64\nApplyPolicies hello 2\nGenerateProfiles hello 1 amd64"
	if got := strings.Join(fake.calls, "\n"); got != want {
		t.Errorf("got calls\n%s\nwant\n%s", got, want)
	}
	if n != 2 || len(fake.connections["hello/1"]) != 1 || len(fake.connections["hello/2"]) != 1 {
		t.Errorf("got %d connection lookups, profiles with %v, want 2 and both revisions connected", n, fake.connections)
	}
	if _, err := f.m.Regenerate("other"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Regenerate of an app not installed: got %v, want ErrNotInstalled", err)
	}
}

func TestGadgetPackage(t *testing.T) {
	f, fake := fakeFixture(t)
	// A gadget's mount keeps its gadget.yaml, read through the backend.
	fake.addPackage("pc", 1, 1)
	fake.contents["pc/1"].Type = manifest.TypeGadget
	fake.gadgetContents["pc/1"] = pcGadget(t)
	rev := revisionOf(1, asserttest.Key(t, "pub"))
	rev.Type = manifest.TypeGadget
	s := setup{name: "pc", rev: rev}
	s.rev.Version = "1.0"
	do, _ := f.m.handlers("mount-revision")
	task := f.taskOf("mount-revision", "pc", nil, s.rev)
	if err := do(task); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fake.calls, "\n"); !strings.HasSuffix(got, "KeepManifest pc 1\nKeepGadget pc 1") {
		t.Errorf("got calls\n%s\nwant the gadget kept after the manifest", got)
	}
	f.st.Lock()
	task.SetStatus(state.DoneStatus)
	f.st.Unlock()
	f.installed(&App{Name: "pc", Current: 1, Sequence: []Revision{rev}})

	name, g, err := f.m.Gadget()
	if err != nil || name != "pc" || g == nil || g.Slots["serial1"] == nil {
		t.Errorf("Gadget: got %q %v %v, want pc with slot serial1", name, g, err)
	}
	if _, err := f.m.Remove("pc"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "gadget") {
		t.Errorf("Remove of the gadget: got %v, want a refusal that says it is the gadget", err)
	}
	if f.changeCount() != 1 {
		t.Errorf("got %d changes, want only the mount's", f.changeCount())
	}
	if err := f.m.checkType("other-gadget", manifest.TypeGadget); !errors.Is(err, ErrRefused) {
		t.Errorf("a second gadget: got %v, want a refusal", err)
	}
	for _, typ := range []string{manifest.TypeApp, manifest.TypeGadget} {
		name := map[string]string{manifest.TypeApp: "hello", manifest.TypeGadget: "pc"}[typ]
		if err := f.m.checkType(name, typ); err != nil {
			t.Errorf("checkType(%s, %s): got %v, want nil", name, typ, err)
		}
	}
	if err := f.m.checkType("mybase", manifest.TypeBase); !errors.Is(err, ErrRefused) {
		t.Errorf("a base: got %v, want a refusal", err)
	}
}

// interfacesRecord describes the interface manager's record in the state: its
// connections, sorted, and the apps that arrived.
func interfacesRecord(t *testing.T, st *state.State) string {
	t.Helper()
	var rec struct {
		Connections map[string]struct{ Slot, By string }
		Arrived     map[string]bool
	}
	st.Lock()
	err := st.Get("interfaces", &rec)
	st.Unlock()
	if err != nil && !errors.Is(err, state.ErrNoState) {
		t.Fatal(err)
	}
	var out []string
	for ref, c := range rec.Connections {
		out = append(out, fmt.Sprintf("%s=%s(%s)", ref, c.Slot, c.By))
	}
	for app := range rec.Arrived {
		out = append(out, "arrived:"+app)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// stateFile returns what describes the state file on disk; a checkpoint
// replaces it (atomicfile), so another file means a write.
func stateFile(t *testing.T) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(dirs.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestChangesRecordConnections pins a bug: the interface manager recorded
// the connections of an installed app (and that it arrived) in its
// Ensure, a moment after the install's change was done, so the state was
// written after 'paddock install' returned (cmd/paddock's TestRefusals
// caught that checkpoint in flight as "a refusal changed the device").
// The changes record them now, as snapd's do: an install, a refresh and a
// remove that are done have recorded what they made, and a later Ensure
// writes nothing; an undone install leaves no record, so that the
// gadget's connections still apply when the app arrives.
func TestChangesRecordConnections(t *testing.T) {
	f, fake := fakeFixture(t)
	g, err := gadget.Parse([]byte(testGadgetYAML), "gadget.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rev := revisionOf(1, asserttest.Key(t, "pub"))
	rev.Type = manifest.TypeGadget
	f.installedOn(fake, &App{Name: "pc", Current: 1, Sequence: []Revision{rev}})
	fake.gadgets["pc/1"] = g
	ifaces := ifacemgr.New(manager.NewEnv(f.st, f.runner, slog.New(slog.DiscardHandler)), f.m)
	f.runner.AddHandler("fail", func(*state.Task) error { return errFake }, nil)

	key1 := asserttest.Key(t, "pub")
	// start makes the change that brings revision rev of hello, declaring
	// plugs, over what is installed; fail adds a failing last task.
	start := func(rev int, fail bool, plugs ...string) string {
		fake.addPackage("hello", rev, 1)
		fake.contents[key("hello", rev)].Apps["hello"].Plugs = plugs
		r := revisionOf(rev, key1)
		r.Size = 1
		before := f.app("hello")
		f.st.Lock()
		defer f.st.Unlock()
		chg := f.m.installChange("hello", before, r, []byte("bundle"), false, nil)
		if fail {
			tasks := chg.Tasks()
			last := f.st.NewTask("fail", "Fail")
			last.WaitFor(tasks[len(tasks)-1])
			chg.AddTask(last)
		}
		return chg.ID()
	}
	// check runs change id to its end, then the interface manager's
	// Ensure, which must find nothing to write.
	check := func(step, id string, want state.Status, record string) {
		t.Helper()
		if got := f.settle(id); got != want {
			_, tasks, err := f.change(id)
			t.Fatalf("%s: got %s %v %v, want %s", step, got, tasks, err, want)
		}
		if got := interfacesRecord(t, f.st); got != record {
			t.Errorf("%s: got the record %q once the change is %s, want %q", step, got, want, record)
		}
		before := stateFile(t)
		if err := ifaces.Ensure(); err != nil {
			t.Fatal(err)
		}
		if after := stateFile(t); !os.SameFile(before, after) {
			t.Errorf("%s: Ensure wrote the state after the change was %s; got the record %q", step, want, interfacesRecord(t, f.st))
		}
	}
	if err := ifaces.Ensure(); err != nil { // the gadget alone: nothing to record
		t.Fatal(err)
	}

	check("undone install", start(1, true, "network", "serial-port"), state.ErrorStatus, "")
	check("install", start(1, false, "network", "serial-port"), state.DoneStatus,
		"arrived:hello hello:network=:network(auto) hello:serial-port=serial1(gadget)")
	fake.calls = nil
	check("refresh without serial-port", start(2, false, "network"), state.DoneStatus,
		"arrived:hello hello:network=:network(auto)")
	// The connection that went went from the kept revision's policies too.
	if c := fake.connections["hello/1"]; !slices.Contains(fake.calls, "GenerateProfiles hello 1 amd64") || len(c) != 1 || c[0].Plug != "network" {
		t.Errorf("after the refresh: got revision 1's profiles with %+v (calls %q), want them generated again without serial-port",
			fake.connections["hello/1"], fake.calls)
	}
	id, err := f.m.Remove("hello")
	if err != nil {
		t.Fatal(err)
	}
	check("remove", id, state.DoneStatus, "")
}
