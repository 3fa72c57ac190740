package appmgr

import (
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/revisions"
)

// TestAdoptSeed lays out an app as the image builder seeds it and checks
// that the first start adopts it: mounted, current, with profiles.
func TestAdoptSeed(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	pkg := packHello(t, "1.0")
	testutil.WriteFile(t, revisions.BlobPath("hello", 1), string(pkg))
	testutil.WriteFile(t, revisions.AssertionPath("hello", 1), string(f.pubBundle("hello", 1, pkg)))
	testutil.WriteFile(t, seedPath(), `{"apps":[{"name":"hello","revision":1}]}`)

	if err := f.m.StartUp(); err != nil {
		t.Fatal(err)
	}
	app := f.app("hello")
	if app == nil || app.Current != 1 || app.CurrentRevision().Publisher != "pub" {
		t.Fatalf("after the first start: got %+v, want hello revision 1 by pub", app)
	}
	if !revisions.IsMounted("hello", 1) {
		t.Error("the seeded revision is not mounted")
	}
	if _, err := os.Stat(profiles.SeccompPath("hello", 1, "hello")); err != nil {
		t.Errorf("no seccomp profile for the seeded app: %v", err)
	}
	if got, _ := revisions.Current("hello"); got != 1 {
		t.Errorf("current: got %d, want 1", got)
	}
	if _, err := os.Stat(seedPath()); !os.IsNotExist(err) {
		t.Errorf("seed.json left after adoption (%v)", err)
	}
	// A second start changes nothing.
	if err := f.m.StartUp(); err != nil {
		t.Fatal(err)
	}
	revisions.Unmount("hello", 1)
}

// TestAdoptSeedRefusesTampered checks that a seeded package whose
// assertions do not verify is not adopted.
func TestAdoptSeedRefusesTampered(t *testing.T) {
	f := newFixture(t)
	pkg := []byte("not what was signed")
	testutil.WriteFile(t, revisions.BlobPath("hello", 1), "other bytes of another length")
	testutil.WriteFile(t, revisions.AssertionPath("hello", 1), string(f.pubBundle("hello", 1, pkg)))
	testutil.WriteFile(t, seedPath(), `{"apps":[{"name":"hello","revision":1}]}`)
	if err := f.m.StartUp(); err == nil {
		t.Fatal("Startup adopted a package whose size does not match its assertion")
	}
	if f.app("hello") != nil {
		t.Error("the tampered app was adopted")
	}
	if _, err := os.Stat(filepath.Join(dirs.LibDir, "seed.json")); err != nil {
		t.Errorf("seed.json should stay until its apps are adopted: %v", err)
	}
	if _, err := os.Stat(revisions.BlobPath("hello", 1)); err != nil {
		t.Errorf("the seeded package was dropped as an orphan: %v", err)
	}
}
