package appmgr

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// TestTakeoverIsPermanent pins issue 9 item 6 (first bullet): after pub2
// took hello over from pub (a delegation with --takeover), 'paddock
// revert' went back to pub's revision, and pub could then publish hello
// again, as the installed revision was its own. Now the takeover is
// recorded: the revert is refused, and so are pub's later revisions, until
// the root key holder hands the app back with another takeover.
func TestTakeoverIsPermanent(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	install := func(key *keys.PrivateKey, deleg []byte, rev int) (string, error) {
		t.Helper()
		version := fmt.Sprintf("%d.0", rev)
		pkg := packHello(t, version)
		r := f.revision("hello", rev, pkg)
		r.Version = version
		return f.m.Install(f.bundle(key, deleg, r), bytes.NewReader(pkg), InstallOptions{})
	}
	done := func(id string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		f.ensure()
		if status, tasks, err := f.change(id); status != state.DoneStatus {
			t.Fatalf("change %s: got %s %v (%v), want Done", id, status, tasks, err)
		}
	}
	pub, pub2 := f.pub.Public().Fingerprint(), f.pub2.Public().Fingerprint()
	done(install(f.pub, f.delegPub, 1))
	done(install(f.pub2, f.delegation(f.pub2, true), 2))
	if a := f.app("hello"); a.OwnerKey != pub2 || !slices.Equal(a.Superseded, []string{pub}) {
		t.Errorf("after the takeover: got owner %s, superseded %v, want %s and [%s]", a.OwnerKey, a.Superseded, pub2, pub)
	}

	id, err := f.m.Revert("hello")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "takeover is permanent") {
		t.Errorf("revert across the takeover: got %q, %v, want it refused as a permanent takeover", id, err)
	}
	if err == nil {
		f.ensure() // the old code reverted: go on from there, as the user did
	}
	_, err = install(f.pub, f.delegPub, 3)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, trust.ErrKeyChanged) || !strings.Contains(err.Error(), "took it over") {
		t.Errorf("the superseded key publishes hello: got %v, want a refusal saying the app was taken over", err)
	}
	if n := len(f.runningChanges()); n != 0 {
		t.Fatalf("%d changes in progress, want none", n)
	}

	// The new owner's revisions revert among themselves.
	done(install(f.pub2, f.delegation(f.pub2, false), 3))
	done(f.m.Revert("hello"))
	if a := f.app("hello"); a.Current != 2 {
		t.Errorf("revert between the new owner's revisions: got current %d, want 2", a.Current)
	}
	// Only a new takeover by the root hands the app back.
	done(install(f.pub, f.delegation(f.pub, true), 4))
	if a := f.app("hello"); a.OwnerKey != pub || !slices.Equal(a.Superseded, []string{pub2}) {
		t.Errorf("after the takeover back: got owner %s, superseded %v, want %s and [%s]", a.OwnerKey, a.Superseded, pub, pub2)
	}
}

// runningChanges returns the changes still in progress.
func (f *fixture) runningChanges() []*state.Change {
	f.st.Lock()
	defer f.st.Unlock()
	return f.st.ChangesInProgress()
}
