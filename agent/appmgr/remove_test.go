package appmgr

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/assert/asserttest"
)

// TestRemoveFailsForward pins the ghost app a remove left when it failed
// after it had begun discarding revisions: the undo of unlink-app could
// not mount the current revision again (its package was gone), and the
// change ended in Error with the app recorded at revisions 1 and 2 while
// nothing of them was left on disk (RemoveProfiles and RemoveApp cases),
// or with revision 1 recorded but gone (Discard case). All three failed on
// the old code. Now a remove that has begun discarding goes forward only:
// the record loses each revision as it goes, the app stays inactive, and a
// second remove finishes the job. A failure before the first discard
// still undoes the change (DeleteCgroup case).
func TestRemoveFailsForward(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	one, two := revisionOf(1, key1), revisionOf(2, key1)
	tests := []struct {
		fail string
		// left are the revisions recorded, and on disk, after the failure;
		// back says the change was undone and the app is active again.
		left []int
		back bool
	}{
		{fail: "DeleteCgroup hello hello", left: []int{1, 2}, back: true},
		{fail: "RemoveProfiles hello 2", left: []int{2}},
		{fail: "Discard hello 2", left: []int{2}},
		{fail: "RemoveApp hello", left: nil},
	}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			f, fake := fakeFixture(t)
			f.installedOn(fake, &App{Name: "hello", Current: 2, Sequence: []Revision{one, two}, OwnerKey: key1.Public().Fingerprint()})
			start := fake.world()
			id, err := f.m.Remove("hello")
			if err != nil {
				t.Fatal(err)
			}
			fake.fail = tt.fail
			if status := f.settle(id); status != state.ErrorStatus {
				t.Fatalf("got %s, want Error", status)
			}
			if _, _, err := f.change(id); err == nil || !strings.Contains(err.Error(), errFake.Error()) {
				t.Errorf("got change error %v, want the fake failure", err)
			}
			app := f.app("hello")
			if app == nil {
				t.Fatal("got hello forgotten, want it recorded until a remove finishes")
			}
			if got := recordedOnDisk(app, fake); got != "" {
				t.Errorf("after the failure: %s", got)
			}
			if got := recorded(app); !slices.Equal(got, tt.left) {
				t.Errorf("got revisions %v recorded, want %v", got, tt.left)
			}
			if tt.back {
				if got := fake.world(); app.Current != 2 || got != start {
					t.Errorf("got current %d and the fake at\n%s\nwant 2 and it back at\n%s", app.Current, got, start)
				}
				return
			}
			if cur, ok := fake.current["hello"]; ok || app.Current != 0 {
				t.Errorf("got current link at %d (linked %v), recorded current %d; want the app inactive", cur, ok, app.Current)
			}
			// Until a remove finishes, the app is neither brought back at a
			// start nor changed by anything else.
			fake.calls = nil
			if err := f.m.StartUp(); err != nil || len(fake.calls) != 0 {
				t.Errorf("StartUp: got %v and calls %q, want none", err, fake.calls)
			}
			if _, err := f.m.Revert("hello"); err == nil || !strings.Contains(err.Error(), "paddock remove hello") {
				t.Errorf("revert: got %v, want an error asking for a remove", err)
			}
			if _, err := f.m.checkUpdate("hello", app, revisionOf(3, key1), InstallOptions{}); err == nil || !strings.Contains(err.Error(), "paddock remove hello") {
				t.Errorf("refresh: got %v, want an error asking for a remove", err)
			}

			// A second remove finishes the job.
			fake.fail = ""
			id, err = f.m.Remove("hello")
			if err != nil {
				t.Fatalf("second remove: %v", err)
			}
			if status, tasks, err := f.change(id); f.settle(id) != state.DoneStatus {
				t.Fatalf("second remove: got %s %v (%v), want Done", status, tasks, err)
			}
			if app := f.app("hello"); app != nil {
				t.Errorf("after the second remove: got %+v recorded, want none", app)
			}
			if got := fake.world(); got != "" {
				t.Errorf("after the second remove: got the fake at\n%s\nwant nothing of hello", got)
			}
		})
	}
}

// recorded returns the revisions app records.
func recorded(app *App) []int {
	var revs []int
	for _, r := range app.Sequence {
		revs = append(revs, r.Revision)
	}
	return revs
}

// recordedOnDisk says how the record of app and the packages on the fake
// differ, or "" when each revision recorded has its package and no other
// package is left, and the recorded current revision is one of them or 0.
func recordedOnDisk(app *App, fake *fakeBackend) string {
	var diffs []string
	for _, r := range app.Sequence {
		if _, ok := fake.packages[key(app.Name, r.Revision)]; !ok {
			diffs = append(diffs, fmt.Sprintf("revision %d recorded without its package", r.Revision))
		}
	}
	for k := range fake.packages {
		var rev int
		if _, err := fmt.Sscanf(k, app.Name+"/%d", &rev); err == nil && app.Revision(rev) == nil {
			diffs = append(diffs, fmt.Sprintf("package %s left, not recorded", k))
		}
	}
	if app.Current != 0 && app.CurrentRevision() == nil {
		diffs = append(diffs, fmt.Sprintf("current revision %d not recorded", app.Current))
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}
