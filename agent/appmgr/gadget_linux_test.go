package appmgr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// packGadget packs a gadget package called other (a name the test
// publisher may sign) holding gadget.yaml; link makes gadget.yaml a
// symlink to it instead, which only a publisher without 'paddock pack'
// can build.
func packGadget(t *testing.T, link string) []byte {
	t.Helper()
	return hostilePackage(t, func(src string) {
		testutil.WriteFile(t, filepath.Join(src, "meta/app.yaml"), "name: other\nversion: \"1.0\"\ntype: gadget\n")
		if link != "" {
			if err := os.Symlink(link, filepath.Join(src, gadget.File)); err != nil {
				t.Fatal(err)
			}
			return
		}
		testutil.WriteFile(t, filepath.Join(src, gadget.File), testGadgetYAML)
	})
}

// seed lays out revision 1 of name from pkg as the image builder does.
func (f *fixture) seed(name string, pkg []byte, typ string) {
	f.t.Helper()
	r := f.revision(name, 1, pkg)
	r.Type = typ
	testutil.WriteFile(f.t, revisions.BlobPath(name, 1), string(pkg))
	testutil.WriteFile(f.t, revisions.AssertionPath(name, 1), string(f.bundle(f.pub, f.delegPub, r)))
}

// TestAdoptSeedGadget seeds a gadget package and an app, as 'paddock
// image build --gadget-package' does: the first start adopts the gadget
// first, keeps its gadget.yaml (read once through pkgfs, root's only), and
// resolves the app's policies with it, so that the gadget's connections
// apply to the app as it arrives. The gadget cannot be removed.
func TestAdoptSeedGadget(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	f.seed("other", packGadget(t, ""), manifest.TypeGadget)
	f.seed("hello", packYAML(t, "name: hello\nversion: \"1.0\"\napps:\n  hello:\n    command: bin/hello\n    plugs: [serial-port]\n"), manifest.TypeApp)
	testutil.WriteFile(t, seedPath(), `{"apps":[{"name":"other","revision":1},{"name":"hello","revision":1}]}`)
	var seen *gadget.Gadget
	f.m.SetConnections(func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection {
		if app == "hello" {
			seen = g
		}
		return nil
	})
	t.Cleanup(func() { revisions.Unmount("other", 1); revisions.Unmount("hello", 1) })
	if err := f.m.StartUp(); err != nil {
		t.Fatal(err)
	}
	name, g, err := f.m.Gadget()
	if err != nil || name != "other" || g == nil || g.Slots["serial1"] == nil {
		t.Fatalf("Gadget: got %q %+v %v, want other with slot serial1", name, g, err)
	}
	if seen == nil || len(seen.Connections) != 1 || seen.Connections[0].Plug != "hello:serial-port" {
		t.Errorf("hello's policies were resolved with gadget %+v, want the seeded gadget with its connection", seen)
	}
	fi, err := os.Stat(gadgetPath("other", 1))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept gadget.yaml: got %v %v, want a file only root reads", fi, err)
	}
	if _, err := f.m.Remove("other"); err == nil || !strings.Contains(err.Error(), "the device's gadget") {
		t.Errorf("remove of the gadget: got %v, want a refusal", err)
	}
}

// TestAdoptSeedGadgetSymlink seeds a gadget whose gadget.yaml is a
// symlink to a file of the device: it is not adopted, and the error does
// not quote the file.
func TestAdoptSeedGadgetSymlink(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	secret := filepath.Join(t.TempDir(), "secret")
	testutil.WriteFile(t, secret, "volumes: {SECRET-CONTENT}\n")
	f.seed("other", packGadget(t, secret), manifest.TypeGadget)
	testutil.WriteFile(t, seedPath(), `{"apps":[{"name":"other","revision":1}]}`)
	t.Cleanup(func() { revisions.Unmount("other", 1) })
	err := f.m.StartUp()
	if err == nil || !strings.Contains(err.Error(), "symlink") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("got %v, want a refusal of the symlink that quotes nothing", err)
	}
	if f.app("other") != nil {
		t.Error("the gadget with a symlinked gadget.yaml was adopted")
	}
}
