package appmgr

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
)

// TestStartupKeepsPolicies checks that the agent keeps a policy for every
// command it installs, root-only, and that its start writes the policies
// of revisions an older agent installed without them: launches read only
// the policy, so without this an upgraded device's apps would not run
// ("cannot find the policy of hello revision 1"; it failed so with the
// start's ensurePolicies left out).
func TestStartupKeepsPolicies(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	pkg := packHello(t, "1.0")
	id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure()
	if status, tasks, err := f.change(id); status != state.DoneStatus {
		t.Fatalf("install: got %s %v (%v), want Done", status, tasks, err)
	}
	path := profiles.PolicyPath("hello", 1, "hello")
	installed, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the install kept no policy: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("policy file: got %v, %v, want mode 0600 (root only)", fi, err)
	}

	// What an older agent left: profiles and a manifest, no policies.
	old, _ := filepath.Glob(filepath.Join(profiles.Dir("hello", 1), "*.policy"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := launch.Resolve("hello", "", nil); err == nil {
		t.Fatal("a launch without a policy was resolved")
	}
	if err := f.m.StartUp(); err != nil {
		t.Fatalf("StartUp: %v", err)
	}
	again, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(again, installed) {
		t.Errorf("after the start: got policy %q (%v), want the one the install kept:\n%s", again, err, installed)
	}
	if s, err := launch.Resolve("hello", "", nil); err != nil || s.Revision != 1 {
		t.Errorf("hello after the start: got %v, want revision 1 runnable", err)
	}
}
