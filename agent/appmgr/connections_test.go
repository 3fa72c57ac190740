package appmgr

import (
	"errors"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/manifest"
)

// The tests in this file check, on the fake backend, the app manager's
// side of connections and of the gadget package: the policies are
// resolved with what SetConnections gives, and the gadget is kept, found
// and never removed.

// pcGadget is a gadget.yaml with one serial slot.
func pcGadget(t *testing.T) *gadget.Gadget {
	t.Helper()
	g, err := gadget.Parse([]byte(`volumes:
  pc:
    schema: gpt
    structures:
      - {name: data, role: system-data, type: linux, size: 16M, filesystem: ext4}
slots:
  serial1: {interface: serial-port, path: /dev/ttyS1}
`), "gadget.yaml")
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
