package fleetlink

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/state"
)

// A change as the health test sees it: its kind, app and how it ended.
type testChange struct {
	kind, app string
	status    state.Status // of its one task; Error records an error
}

// TestHealthFromChanges checks which failed changes make the device
// degraded, and for how long: until a later change of the same app (or
// of the same kind, for a change of no app) ends done.
func TestHealthFromChanges(t *testing.T) {
	tests := []struct {
		name    string
		changes []testChange
		want    []string // the problems' starts; none for ok
	}{
		{"none", nil, nil},
		{"done", []testChange{{"install", "hello", state.DoneStatus}}, nil},
		{"failed", []testChange{{"install", "hello", state.DoneStatus}, {"refresh", "hello", state.ErrorStatus}},
			[]string{`change 2 (refresh hello) failed: a step: cannot mount`}},
		{"failed then done", []testChange{{"refresh", "hello", state.ErrorStatus}, {"revert", "hello", state.DoneStatus}}, nil},
		{"failed then another app done", []testChange{{"refresh", "hello", state.ErrorStatus}, {"install", "other", state.DoneStatus}},
			[]string{`change 1 (refresh hello) failed`}},
		{"failed twice: the last", []testChange{{"refresh", "hello", state.ErrorStatus}, {"refresh", "hello", state.ErrorStatus}},
			[]string{`change 2 (refresh hello) failed`}},
		{"undone cleanly", []testChange{{"refresh", "hello", state.UndoneStatus}}, nil},
		{"in progress", []testChange{{"refresh", "hello", state.DoingStatus}}, nil},
		{"failed while another runs", []testChange{{"refresh", "hello", state.ErrorStatus}, {"refresh", "hello", state.DoingStatus}},
			[]string{`change 1 (refresh hello) failed`}},
		{"no app: cleared by its kind", []testChange{{"base-update", "", state.ErrorStatus}, {"base-update", "", state.DoneStatus}}, nil},
		{"no app: not by another kind", []testChange{{"base-update", "", state.ErrorStatus}, {"install", "hello", state.DoneStatus}},
			[]string{`change 1 (base-update ) failed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthFixture(t)
			st := f.dev.st
			st.Lock()
			for _, c := range tt.changes {
				chg := st.NewChange(c.kind, c.kind+" "+c.app)
				if c.app != "" {
					chg.Set("app-name", c.app)
				}
				task := st.NewTask("nothing", "a step")
				chg.AddTask(task)
				if c.status == state.ErrorStatus {
					task.Errf("cannot mount")
				}
				task.SetStatus(c.status)
			}
			st.Unlock()
			health, problems := f.dev.health(nil)
			checkProblems(t, health, problems, tt.want)
		})
	}
}

// healthFixture is a fixture whose runner holds the tasks of kind
// "nothing" in progress until the test ends.
func healthFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.runner.AddHandler("nothing", func(*state.Task) error {
		<-f.runner.Stopping().Done()
		return state.Retry{Reason: "the test ends"}
	}, nil)
	return f
}

func checkProblems(t *testing.T, health string, problems, want []string) {
	t.Helper()
	if len(want) == 0 {
		if health != "ok" || problems != nil {
			t.Errorf("got %s %q, want ok", health, problems)
		}
		return
	}
	if health != "degraded" || len(problems) != len(want) {
		t.Fatalf("got %s %q, want degraded with %q", health, problems, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d: got %q, want it to start with %q", i, problems[i], w)
		}
	}
}

// TestHealthFromMountsAndStart checks the other signals: an app whose
// current revision is not mounted (the mount table, not the state, says
// so), unless a change of it is in progress, and errors of the last start.
func TestHealthFromMountsAndStart(t *testing.T) {
	f := healthFixture(t)
	mounted := map[string]bool{"hello/2": true}
	old := isMounted
	isMounted = func(name string, rev int) bool { return mounted[fmt.Sprintf("%s/%d", name, rev)] }
	t.Cleanup(func() { isMounted = old })
	apps := []apitypes.AppInfo{{Name: "hello", Revision: 2}, {Name: "web", Revision: 5}}

	health, problems := f.dev.health(apps)
	checkProblems(t, health, problems, []string{"web revision 5 is not mounted"})

	mounted["web/5"] = true
	health, problems = f.dev.health(apps)
	checkProblems(t, health, problems, nil)

	// A change of web in progress decides about its mounts.
	delete(mounted, "web/5")
	f.dev.st.Lock()
	chg := f.dev.st.NewChange("refresh", "refresh web")
	chg.Set("app-name", "web")
	chg.AddTask(f.dev.st.NewTask("nothing", "a step"))
	f.dev.st.Unlock()
	health, problems = f.dev.health(apps)
	checkProblems(t, health, problems, nil)

	f.dev.StartErr = errors.Join(errors.New("cannot mount web revision 4: bad superblock"), errors.New("cannot load \x1b[31mprofiles"))
	health, problems = f.dev.health(apps)
	checkProblems(t, health, problems, []string{
		"the agent's last start: cannot mount web revision 4: bad superblock",
		"the agent's last start: cannot load [31mprofiles",
	})
}

// TestHealthFromApps checks that an app in error degrades the device with
// its reason, and that okay, waiting and unknown apps do not.
func TestHealthFromApps(t *testing.T) {
	f := healthFixture(t)
	old := isMounted
	isMounted = func(string, int) bool { return true }
	t.Cleanup(func() { isMounted = old })
	apps := []apitypes.AppInfo{{Name: "db", Revision: 1}, {Name: "plain", Revision: 1}, {Name: "web", Revision: 2}}
	healths := map[string]*apitypes.AppHealth{
		"db":  {Status: "waiting", Source: "probe", Message: "not probed yet"},
		"web": {Status: "okay", Source: "probe"},
	}
	f.dev.AppHealth = func(app string) *apitypes.AppHealth { return healths[app] }
	health, problems := f.dev.health(apps)
	checkProblems(t, health, problems, nil)

	healths["web"] = &apitypes.AppHealth{Status: "error", Source: "probe", Message: "tcp probe of web failed (3 of 3): connection refused"}
	health, problems = f.dev.health(apps)
	checkProblems(t, health, problems, []string{"web is unhealthy (probe): tcp probe of web failed (3 of 3): connection refused"})
}

func TestSanitizeProblems(t *testing.T) {
	long := strings.Repeat("é", 300)
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprint("problem ", i)
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"control runes", []string{"a\x1b]0;pwned\x07b\n\tc  d"}, []string{"a ]0;pwned b c d"}},
		{"long", []string{long}, []string{strings.Repeat("é", 98) + "…"}},
		{"many", many, append(slices.Clone(many[:7]), "and 13 more problems")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitize(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, p := range got {
				if len(p) > maxProblemLen {
					t.Errorf("got %d bytes, want at most %d", len(p), maxProblemLen)
				}
			}
		})
	}
}
