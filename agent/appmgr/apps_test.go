package appmgr

import (
	"os"
	"slices"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/revisions"
)

func seq(revs ...int) []Revision {
	var out []Revision
	for _, r := range revs {
		out = append(out, Revision{Revision: r})
	}
	return out
}

func revs(s []Revision) []int {
	var out []int
	for _, r := range s {
		out = append(out, r.Revision)
	}
	return out
}

func TestAppRevisions(t *testing.T) {
	tests := []struct {
		name     string
		app      App
		previous int // 0 for none
	}{
		{"one revision", App{Current: 1, Sequence: seq(1)}, 0},
		{"refreshed", App{Current: 2, Sequence: seq(1, 2)}, 1},
		{"reverted", App{Current: 1, Sequence: seq(1, 2)}, 0},
		{"gap", App{Current: 7, Sequence: seq(2, 5, 7)}, 5},
		{"reverted in the middle", App{Current: 5, Sequence: seq(2, 5, 7)}, 2},
		{"current not kept", App{Current: 4, Sequence: seq(2, 3)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := 0
			if p := tt.app.Previous(); p != nil {
				got = p.Revision
			}
			if got != tt.previous {
				t.Errorf("Previous: got %d, want %d", got, tt.previous)
			}
		})
	}

	a := App{Current: 5, Sequence: seq(2, 5, 7)}
	if r := a.Revision(7); r == nil || r.Revision != 7 {
		t.Errorf("Revision(7): got %+v, want revision 7", r)
	}
	if r := a.Revision(3); r != nil {
		t.Errorf("Revision(3): got %+v, want nil", r)
	}
	if r := a.CurrentRevision(); r == nil || r.Revision != 5 {
		t.Errorf("CurrentRevision: got %+v, want revision 5", r)
	}
	// Revision points into the sequence, so a caller can update the record.
	a.Revision(7).Version = "7.0"
	if a.Sequence[2].Version != "7.0" {
		t.Errorf("Revision returned a copy, want a pointer into the sequence")
	}
}

func TestAppAdd(t *testing.T) {
	a := App{Sequence: seq(3)}
	a.add(Revision{Revision: 5, Version: "5"})
	a.add(Revision{Revision: 1})
	a.add(Revision{Revision: 5, Version: "again"}) // kept as it was
	if got := revs(a.Sequence); !slices.Equal(got, []int{1, 3, 5}) {
		t.Errorf("got sequence %v, want [1 3 5]", got)
	}
	if v := a.Revision(5).Version; v != "5" {
		t.Errorf("adding a kept revision again: got version %q, want the first record kept", v)
	}
}

// TestDiscardOld runs the discard-old handler through the runner on an app
// with four revisions on disk and checks which are kept.
func TestDiscardOld(t *testing.T) {
	tests := []struct {
		name    string
		keep    int
		current int
		want    []int
	}{
		{"default", DefaultKeep, 4, []int{3, 4}},
		{"three", 3, 4, []int{2, 3, 4}},
		{"fewer than two is two", 1, 4, []int{3, 4}},
		{"more than there are", 9, 4, []int{1, 2, 3, 4}},
		{"current is the oldest", 2, 1, []int{1, 4}},
		{"current in the middle", 2, 3, []int{3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.m.Keep = tt.keep
			app := &App{Name: "hello", Current: tt.current}
			for r := 1; r <= 4; r++ {
				app.add(revisionOf(r, f.pub))
				testutil.WriteFile(t, revisions.BlobPath("hello", r), "blob")
				testutil.WriteFile(t, revisions.AssertionPath("hello", r), "assertions")
				testutil.WriteFile(t, revisions.DataDir("hello", r)+"/notes", "data")
			}
			f.installed(app)

			f.st.Lock()
			chg := f.st.NewChange("refresh", "Discard")
			setupChange(chg, "hello", app, *app.CurrentRevision(), nil)
			chg.AddTask(f.st.NewTask("discard-old", "Discard old revisions"))
			id := chg.ID()
			f.st.Unlock()
			f.ensure()

			if status, tasks, err := f.change(id); status != state.DoneStatus {
				t.Fatalf("change: got %s %v (%v), want Done", status, tasks, err)
			}
			got := f.app("hello")
			if got == nil || !slices.Equal(revs(got.Sequence), tt.want) || got.Current != tt.current {
				t.Fatalf("got app %+v, want revisions %v with %d current", got, tt.want, tt.current)
			}
			for r := 1; r <= 4; r++ {
				kept := slices.Contains(tt.want, r)
				for _, p := range []string{revisions.BlobPath("hello", r), revisions.AssertionPath("hello", r), revisions.DataDir("hello", r)} {
					if _, err := os.Lstat(p); (err == nil) != kept {
						t.Errorf("revision %d kept %v: got %s present %v", r, kept, p, err == nil)
					}
				}
			}
		})
	}
}
