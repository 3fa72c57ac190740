package appmgr

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert/asserttest"
)

// The tests in this file run the health gate of a refresh (gate.go) with
// the fake backend and fakes of the service and health managers; the real
// ones are tested as root in cmd/paddock (TestRefreshRevertsUnhealthy).

// fakeServices runs the services of each app's current revision on the
// fake backend, as the service manager does.
type fakeServices struct {
	be      *fakeBackend
	log     *[]string
	running map[string]int // app → revision whose services run
	// status gives the services of a revision while they run.
	status func(rev int) []apitypes.ServiceInfo
	// failStart makes StartApp fail for that revision, half-way: its
	// services run, but it says it could not start them all.
	failStart int
}

func (s *fakeServices) StartApp(app string) error {
	*s.log = append(*s.log, fmt.Sprintf("StartApp %s (revision %d)", app, s.be.current[app]))
	s.running[app] = s.be.current[app]
	if s.failStart != 0 && s.failStart == s.be.current[app] {
		return errFake
	}
	return nil
}

func (s *fakeServices) StopApp(app string) error {
	*s.log = append(*s.log, "StopApp "+app)
	delete(s.running, app)
	return nil
}

func (s *fakeServices) Status(app string) []apitypes.ServiceInfo {
	rev, ok := s.running[app]
	if !ok || s.status == nil {
		return nil
	}
	return s.status(rev)
}

// fakeHealth judges each revision as health says: declared revisions get
// their health from it, waiting ones until the wait ends.
type fakeHealth struct {
	log    *[]string
	rev    int
	health map[int]health.Health // by revision; absent: nothing judges it
}

func (h *fakeHealth) Reset(app string, rev int) {
	*h.log = append(*h.log, fmt.Sprintf("Reset %s %d", app, rev))
	h.rev = rev
}

func (h *fakeHealth) Declared(string) bool { _, ok := h.health[h.rev]; return ok }

func (h *fakeHealth) Wait(ctx context.Context, app string) (health.Health, error) {
	got, ok := h.health[h.rev]
	if !ok {
		return health.Health{Status: health.Unknown, Message: "no health check declared"}, nil
	}
	if got.Status == health.Waiting {
		<-ctx.Done()
		return got, ctx.Err()
	}
	return got, nil
}

func webService(app string, rev int) apitypes.ServiceInfo {
	return apitypes.ServiceInfo{App: app, Service: "web", Revision: rev, Daemon: "simple", State: apitypes.ServiceRunning, Enabled: true}
}

func TestHealthGate(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	one, two := revisionOf(1, key1), revisionOf(2, key1)
	up := func(rev int) []apitypes.ServiceInfo { return []apitypes.ServiceInfo{webService("hello", rev)} }
	crashed := func(rev int) []apitypes.ServiceInfo {
		s := webService("hello", rev)
		if rev == 2 {
			s.State, s.LastExit, s.Message = apitypes.ServiceWaiting, &apitypes.ServiceExit{Code: 3, Time: time.Now()}, "restarts in 1s"
		}
		return []apitypes.ServiceInfo{s}
	}
	okay := health.Health{Status: health.Okay, Message: "http probe of web passed"}
	bad := health.Health{Status: health.Error, Message: "http probe of web failed (3 of 3): connection refused"}
	waiting := health.Health{Status: health.Waiting, Message: "http probe of web failed (1 of 3): connection refused"}
	for _, tt := range []struct {
		name     string
		services func(rev int) []apitypes.ServiceInfo
		health   map[int]health.Health
		// want is "" for a committed refresh, else why it was reverted.
		want string
		// took is the least time the gate must have waited.
		took time.Duration
	}{
		{name: "healthy", services: up, health: map[int]health.Health{1: okay, 2: okay}},
		{name: "unhealthy", services: up, health: map[int]health.Health{1: okay, 2: bad}, want: bad.Message},
		{name: "not healthy in the window", services: up, health: map[int]health.Health{1: okay, 2: waiting},
			want: "not healthy within 1s (waiting: " + waiting.Message + ")", took: time.Second},
		{name: "a service fails while health waits", services: crashed, health: map[int]health.Health{1: okay, 2: waiting},
			want: "service hello.web ended with status 3 (restarts in 1s)"},
		{name: "services stay up, no health check", services: up, took: time.Second},
		{name: "a service fails, no health check", services: crashed, want: "service hello.web ended with status 3 (restarts in 1s)"},
		{name: "no services, no health check"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testutil.Replace(t, &gateSlice, 50*time.Millisecond)
			f, fake := fakeFixture(t)
			var calls []string
			svcs := &fakeServices{be: fake, log: &calls, running: map[string]int{"hello": 1}, status: tt.services}
			f.m.Services, f.m.Health = svcs, &fakeHealth{log: &calls, health: tt.health, rev: 1}
			f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{one}, OwnerKey: key1.Public().Fingerprint()})
			before := fake.world()
			start := time.Now()
			id := f.startInstall(f.app("hello"), two)
			fake.contents["hello/2"].HealthWindow = time.Second
			status := f.settle(id)
			took := time.Since(start)
			if took < tt.took {
				t.Errorf("the gate took %s, want at least %s", took, tt.took)
			}
			wantCalls := []string{"StopApp hello", "StartApp hello (revision 2)", "Reset hello 2"}
			if tt.want == "" {
				if status != state.DoneStatus || f.app("hello").Current != 2 || svcs.running["hello"] != 2 {
					_, tasks, err := f.change(id)
					t.Fatalf("got %s %v %v, current %d, services of %d, want Done at 2", status, tasks, err, f.app("hello").Current, svcs.running["hello"])
				}
				if !slices.Equal(calls, wantCalls) {
					t.Errorf("got calls %q, want %q", calls, wantCalls)
				}
				return
			}
			// Reverted: the previous revision, its data and services are back.
			wantCalls = append(wantCalls, "StopApp hello", "StartApp hello (revision 1)", "Reset hello 1")
			if status != state.ErrorStatus || f.app("hello").Current != 1 || svcs.running["hello"] != 1 || !slices.Equal(calls, wantCalls) {
				t.Fatalf("got %s, current %d, services of %d, calls %q; want Error, back at 1 with its services, calls %q",
					status, f.app("hello").Current, svcs.running["hello"], calls, wantCalls)
			}
			if got := fake.world(); got != before {
				t.Errorf("got the fake at\n%s\nwant it back at\n%s", got, before)
			}
			f.st.Lock()
			chg := f.st.Change(id)
			reverted, chgErr := Reverted(chg), chg.Err()
			var log []string
			for _, task := range chg.Tasks() {
				log = append(log, task.Log()...)
			}
			f.st.Unlock()
			if want := "health check failed: " + tt.want; reverted != want {
				t.Errorf("got Reverted %q, want %q", reverted, want)
			}
			if chgErr == nil || !strings.Contains(chgErr.Error(), "health check failed: "+tt.want) {
				t.Errorf("got change error %v, want it to say why", chgErr)
			}
			if want := "reverted: health check failed: " + tt.want + "; revision 1 is current again and its services run"; !slices.ContainsFunc(log, func(l string) bool { return strings.HasSuffix(l, want) }) {
				t.Errorf("got log %q, want a line %q", log, want)
			}
		})
	}
}

// TestRevertedOnlyWhenUndone: Reverted says nothing of a change whose
// health check failed but whose link was not undone (an undo failed), nor
// of a failed change that is no refresh gone back.
func TestRevertedOnlyWhenUndone(t *testing.T) {
	f := newFixture(t)
	f.st.Lock()
	defer f.st.Unlock()
	chg := f.st.NewChange("refresh", "Refresh hello")
	link := f.st.NewTask("link-revision", "Link")
	chg.AddTask(link)
	link.SetStatus(state.ErrorStatus)
	if got := Reverted(chg); got != "" {
		t.Errorf("failed change without a health check: got %q, want none", got)
	}
	chg.Set(HealthFailedKey, "bad")
	if got := Reverted(chg); got != "" {
		t.Errorf("link not undone: got %q, want none", got)
	}
	link.SetStatus(state.UndoneStatus)
	if got := Reverted(chg); got != "health check failed: bad" {
		t.Errorf("link undone: got %q, want health check failed: bad", got)
	}
}

// TestHealthGateStartFails: services that cannot all start fail the
// refresh; the task cleans up (the new services stop, since a failed task
// is not undone), and the previous revision's services run again.
func TestHealthGateStartFails(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	one, two := revisionOf(1, key1), revisionOf(2, key1)
	f, fake := fakeFixture(t)
	var calls []string
	svcs := &fakeServices{be: fake, log: &calls, running: map[string]int{"hello": 1}, failStart: 2}
	f.m.Services = svcs
	f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{one}, OwnerKey: key1.Public().Fingerprint()})
	if status := f.settle(f.startInstall(f.app("hello"), two)); status != state.ErrorStatus {
		t.Fatalf("got %s, want Error", status)
	}
	want := []string{"StopApp hello", "StartApp hello (revision 2)", "StopApp hello", "StartApp hello (revision 1)"}
	if !slices.Equal(calls, want) || svcs.running["hello"] != 1 || f.app("hello").Current != 1 {
		t.Errorf("got calls %q, services of %d, current %d; want %q, back at 1", calls, svcs.running["hello"], f.app("hello").Current, want)
	}
}

// TestHealthGateAgentStops: the agent stopping during the window does not
// fail the refresh: the health check runs again at the next start.
func TestHealthGateAgentStops(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	one, two := revisionOf(1, key1), revisionOf(2, key1)
	f, fake := fakeFixture(t)
	var calls []string
	f.m.Services = &fakeServices{be: fake, log: &calls, running: map[string]int{"hello": 1}}
	waiting := health.Health{Status: health.Waiting, Message: "starting"}
	f.m.Health = &fakeHealth{log: &calls, health: map[int]health.Health{1: waiting, 2: waiting}, rev: 1}
	f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{one}, OwnerKey: key1.Public().Fingerprint()})
	id := f.startInstall(f.app("hello"), two)
	time.AfterFunc(300*time.Millisecond, f.runner.Stop)
	f.ensure()
	status, tasks, err := f.change(id)
	if status.Ready() || !slices.Contains(tasks, "gate-check-health=Do") || err != nil {
		t.Errorf("got %s %v %v, want the change in progress with gate-check-health to do again", status, tasks, err)
	}
}
