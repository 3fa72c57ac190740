package appmgr

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// TestPowerCutMidRefresh pins issue 9 item 8 (first bullet): a power cut
// between the mount and the profiles of a refresh, on the appliance where
// /apps is a tmpfs, lost the mounts and the current links. At the next
// start the app was not runnable while the change was in progress (startup
// skipped it), and the resumed change failed, since generating the
// profiles read app.yaml from the mount that was gone; it was undone and
// nothing brought the links back: 'paddock run hello' said "hello is not
// installed" until another reboot. Now startup makes the kept current
// revision runnable, and the resumed change finishes from what it kept.
func TestPowerCutMidRefresh(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	one, two := packHello(t, "1.0"), packHello(t, "2.0")
	install := func(rev int, pkg []byte) string {
		t.Helper()
		r := f.revision("hello", rev, pkg)
		r.Version = map[int]string{1: "1.0", 2: "2.0"}[rev]
		id, err := f.m.Install(f.bundle(f.pub, f.delegPub, r), bytes.NewReader(pkg), InstallOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	install(1, one)
	f.ensure()

	// The refresh stops before its profiles, as the power goes.
	be := f.m.be
	f.m.be = powerGoes{be}
	id := install(2, two)
	f.ensure()
	if status, tasks, _ := f.change(id); status.Ready() {
		t.Fatalf("refresh before the cut: got %s %v, want it in progress", status, tasks)
	}
	powerCut(t)

	// The next boot: the agent starts, then resumes the change.
	f.m.be = be
	if err := f.m.StartUp(); err != nil {
		t.Errorf("Startup: %v", err)
	}
	if s, err := launch.Resolve("hello", "", nil); err != nil || s.Revision != 1 {
		t.Errorf("hello while the refresh is in progress: got %v, want revision 1 runnable", err)
	}
	f.ensure()
	if status, tasks, err := f.change(id); status != state.DoneStatus {
		t.Errorf("the resumed refresh: got %s %v (%v), want Done", status, tasks, err)
	}
	if s, err := launch.Resolve("hello", "", nil); err != nil || s.Revision != 2 {
		t.Errorf("hello after the refresh: got %v, want revision 2 runnable", err)
	}
}

// powerCut takes what a power cut takes from the appliance: every mount,
// and /apps, a tmpfs there, with the current links.
// powerGoes is a backend whose GenerateProfiles never comes: the power
// goes first, and the runner keeps the task for the next start.
type powerGoes struct{ Backend }

func (powerGoes) GenerateProfiles(int, *manifest.Manifest, string, []policy.Connection) error {
	return state.Retry{Reason: "the power goes"}
}

func powerCut(t *testing.T) {
	t.Helper()
	ms := mountsUnder(t, dirs.Root)
	for i := len(ms) - 1; i >= 0; i-- {
		if err := unix.Unmount(ms[i], unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(dirs.AppsDir); err != nil {
		t.Fatal(err)
	}
	if revisions.IsMounted("hello", 1) {
		t.Fatal("still mounted after the cut")
	}
}
