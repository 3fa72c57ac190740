package appmgr

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/revisions"
)

// grantedDelegation returns a delegation of pub for hello that grants root.
func (f *fixture) grantedDelegation() []byte {
	f.t.Helper()
	return asserttest.Delegation(f.t, f.root, f.pub, func(ak *assert.AccountKey) {
		ak.Names, ak.Since, ak.Until, ak.Grants = []string{"hello"}, f.since, time.Time{}, []string{assert.GrantRoot}
	})
}

// TestInstallRootNeedsGrant checks that an app whose app.yaml says user:
// root is refused, and leaves nothing behind, unless its publisher's
// delegation grants root; with the grant it is recorded to run as root.
func TestInstallRootNeedsGrant(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	fakeBase(t, "", "")
	pkg := packYAML(t, "name: hello\nversion: \"1.0\"\nuser: root\napps:\n  hello:\n    command: bin/hello\n")
	id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure()
	status, tasks, chgErr := f.change(id)
	if status != state.ErrorStatus || chgErr == nil || !strings.Contains(chgErr.Error(), "asks to run as root (user: root), which the delegation of its publisher pub does not grant") {
		t.Fatalf("change without the grant: got %s %v (%v), want Error about the grant", status, tasks, chgErr)
	}
	for _, p := range []string{revisions.MountDir("hello", 1), launch.UserPath("hello", 1), revisions.DataDir("hello", 1)} {
		if exists(t, p) {
			t.Errorf("after the refusal: %s exists, want it gone", p)
		}
	}

	id, err = f.m.Install(f.bundle(f.pub, f.grantedDelegation(), f.revision("hello", 1, pkg)), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure()
	if status, tasks, chgErr := f.change(id); status != state.DoneStatus {
		t.Fatalf("change with the grant: got %s %v (%v), want Done", status, tasks, chgErr)
	}
	if u, err := launch.ReadUser("hello", 1); err != nil || !u.Root {
		t.Errorf("with the grant: got user %+v, %v, want root", u, err)
	}
	// Its data is root's: root without capabilities would not enter
	// another user's 0700 folder.
	fi, err := os.Stat(revisions.DataDir("hello", 1))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("data of the root app: got owner %d:%d, want root's", st.Uid, st.Gid)
	}
}

// TestInstallGivesDataToTheApp checks that an app's data belongs to its own
// user, and that the data tree above it is root's alone.
func TestInstallGivesDataToTheApp(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	fakeBase(t, "", "")
	pkg := packHello(t, "1.0")
	id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure()
	if status, tasks, chgErr := f.change(id); status != state.DoneStatus {
		t.Fatalf("install: got %s %v (%v), want Done", status, tasks, chgErr)
	}
	u, err := launch.ReadUser("hello", 1)
	if err != nil || u != (launch.User{UID: FirstAppID, GID: FirstAppID}) {
		t.Errorf("got user %+v, %v, want the app's own %d", u, err, FirstAppID)
	}
	for _, p := range []struct {
		path     string
		uid, gid uint32
	}{
		{dirs.DataDir, 0, 0},
		{filepath.Dir(revisions.CommonDir("hello")), 0, 0},
		{revisions.DataDir("hello", 1), FirstAppID, FirstAppID},
		{revisions.CommonDir("hello"), FirstAppID, FirstAppID},
	} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != p.uid || st.Gid != p.gid || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: got %d:%d %v, want %d:%d and 0700", p.path, st.Uid, st.Gid, fi.Mode().Perm(), p.uid, p.gid)
		}
	}
}

// TestStartupGivesOldDataToTheApp checks that an app installed before apps
// had users of their own gets one at the agent's start: its data, root's
// and reachable by everyone, with a setuid file in it, becomes the app's,
// and its revision a user record.
func TestStartupGivesOldDataToTheApp(t *testing.T) {
	testutil.NeedRoot(t, "give data to the app's user")
	f := newFixture(t)
	fakeBase(t, "", "")
	f.installed(&App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, f.pub)}})
	rootsh := filepath.Join(revisions.DataDir("hello", 1), "rootsh")
	testutil.WriteFile(t, rootsh, "#!/bin/sh")
	if err := os.Chmod(rootsh, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	f.st.Lock()
	err := f.m.ensureUsers()
	f.st.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(rootsh)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != FirstAppID || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("old setuid file: got owner %d mode %v, want %d without setuid", st.Uid, fi.Mode(), FirstAppID)
	}
	if u, err := launch.ReadUser("hello", 1); err != nil || u.UID != FirstAppID || u.Root {
		t.Errorf("got user %+v, %v, want the app's own", u, err)
	}
}
