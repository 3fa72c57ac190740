package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/ota/manifest"
)

// fakeApps lists apps at revisions.
type fakeApps map[string]int

func (f fakeApps) List() []apitypes.AppInfo {
	var out []apitypes.AppInfo
	for name, rev := range f {
		out = append(out, apitypes.AppInfo{Name: name, Revision: rev})
	}
	return out
}

// fakeRunner answers probes with the error set per app, and counts runs.
type fakeRunner struct {
	mu   sync.Mutex
	errs map[string]error
	runs map[string]int
}

func (f *fakeRunner) run(ctx context.Context, app string, rev int, s probeSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[app]++
	return f.errs[app]
}

func (f *fakeRunner) set(app string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[app] = err
}

func (f *fakeRunner) count(app string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[app]
}

// newTest returns a manager over apps whose manifests are mfs, with a
// fake probe runner.
func newTest(t *testing.T, apps fakeApps, mfs map[string]*manifest.Manifest) (*Manager, *fakeRunner) {
	t.Helper()
	old := loadManifest
	loadManifest = func(app string, rev int) (*manifest.Manifest, error) {
		if m := mfs[app]; m != nil {
			return m, nil
		}
		return nil, errors.New("no manifest")
	}
	m := New(manager.Env{}, apps)
	r := &fakeRunner{errs: map[string]error{}, runs: map[string]int{}}
	m.runner = r
	t.Cleanup(func() {
		m.Stop()
		loadManifest = old
	})
	return m, r
}

func probed(cmd string, h manifest.Health) *manifest.Manifest {
	return &manifest.Manifest{Name: "x", Apps: map[string]*manifest.App{cmd: {Command: "bin/" + cmd, Daemon: "simple", Health: &h}}}
}

func waitFor(t *testing.T, m *Manager, app string) Health {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := m.Wait(ctx, app)
	if err != nil {
		t.Fatalf("Wait(%s): %v (last %+v)", app, err, h)
	}
	return h
}

func TestProbeRetries(t *testing.T) {
	check := manifest.Health{TCP: 80, Interval: time.Second, Timeout: time.Second, Retries: 2}
	m, r := newTest(t, fakeApps{"web": 1}, map[string]*manifest.Manifest{"web": probed("web", check)})
	if err := m.Ensure(); err != nil {
		t.Fatal(err)
	}
	if h := waitFor(t, m, "web"); h.Status != Okay || h.Source != SourceProbe {
		t.Fatalf("got %+v, want okay from the probe", h)
	}
	r.set("web", errors.New("connection refused"))
	// One failure of two allowed: still okay, a second second later error.
	deadline := time.Now().Add(20 * time.Second)
	var sawOkayAfterFail bool
	for time.Now().Before(deadline) {
		h := m.Health("web")
		if h.Status == Error {
			if !strings.Contains(h.Message, "failed (2 of 2): connection refused") {
				t.Errorf("got message %q, want the failures counted and the reason", h.Message)
			}
			if !sawOkayAfterFail {
				t.Errorf("the first failure was not absorbed by retries")
			}
			return
		}
		if r.count("web") >= 2 && h.Status == Okay {
			sawOkayAfterFail = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never unhealthy: %+v", m.Health("web"))
}

func TestWaitAfterReset(t *testing.T) {
	check := manifest.Health{TCP: 80, Interval: time.Hour, Timeout: time.Second, Retries: 1}
	m, r := newTest(t, fakeApps{"web": 1}, map[string]*manifest.Manifest{"web": probed("web", check)})
	m.Ensure()
	if h := waitFor(t, m, "web"); h.Status != Okay {
		t.Fatalf("got %+v, want okay", h)
	}
	// A new start: the okay of the old one must not count.
	r.set("web", errors.New("refused"))
	m.Reset("web", 2)
	h := waitFor(t, m, "web")
	if h.Status != Error || !strings.Contains(h.Message, "refused") {
		t.Fatalf("got %+v, want the error of the new start", h)
	}
	if n := r.count("web"); n != 2 {
		t.Errorf("got %d probes, want 2 (one per start; the interval is an hour)", n)
	}
}

func TestNothingDeclared(t *testing.T) {
	m, r := newTest(t, fakeApps{"plain": 1}, map[string]*manifest.Manifest{"plain": {Name: "plain", Apps: map[string]*manifest.App{"plain": {Command: "bin/plain"}}}})
	m.Ensure()
	h, err := m.Wait(context.Background(), "plain")
	if err != nil || h.Status != Unknown || h.Message != errNoHealth {
		t.Fatalf("got %+v, %v, want unknown at once", h, err)
	}
	if m.Declared("plain") {
		t.Errorf("Declared: got true, want false")
	}
	if len(m.of["plain"].probes) != 0 || r.count("plain") != 0 {
		t.Errorf("an app without health has probes")
	}
	// The app speaks for itself: from then on it is judged.
	m.Set("plain", SourceCtl, "", Waiting, "warming up")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if h, err := m.Wait(ctx, "plain"); !errors.Is(err, context.DeadlineExceeded) || h.Status != Waiting || h.Message != "warming up" {
		t.Fatalf("got %+v, %v, want waiting until the deadline", h, err)
	}
}

func TestWorstSource(t *testing.T) {
	m, _ := newTest(t, fakeApps{}, nil)
	m.Set("a", SourceCtl, "", Okay, "fine")
	before := m.Health("a")
	m.Set("a", SourceCtl, "", Okay, "fine")
	if got := m.Health("a"); !got.Since.Equal(before.Since) {
		t.Errorf("Since moved without a change: %v, want %v", got.Since, before.Since)
	}
	m.Set("a", SourceCrashLoop, "web", Error, "web restarted 5 times in 1m")
	if h := m.Health("a"); h.Status != Error || h.Source != SourceCrashLoop {
		t.Fatalf("got %+v, want the crash loop's error", h)
	}
	m.Clear("a", SourceCrashLoop, "web")
	if h := m.Health("a"); h.Status != Okay {
		t.Fatalf("got %+v, want okay once the crash loop ended", h)
	}
	m.Set("a", SourceCtl, "", Waiting, "line one\nline two\x1b[31m")
	if h := m.Health("a"); h.Message != "line one line two [31m" {
		t.Errorf("got message %q, want one printable line", h.Message)
	}
	if got := m.All(); len(got) != 1 || got["a"].Status != Waiting {
		t.Errorf("All: got %+v", got)
	}
}

func TestGoneAppForgotten(t *testing.T) {
	apps := fakeApps{"web": 1}
	check := manifest.Health{TCP: 80, Interval: time.Hour, Timeout: time.Second, Retries: 1}
	m, _ := newTest(t, apps, map[string]*manifest.Manifest{"web": probed("web", check)})
	m.Ensure()
	waitFor(t, m, "web")
	delete(apps, "web")
	m.Ensure()
	if h := m.Health("web"); h.Status != Unknown {
		t.Errorf("got %+v for a removed app, want unknown", h)
	}
}

type fakeServices map[string][]apitypes.ServiceInfo

func (f fakeServices) Status(app string) []apitypes.ServiceInfo { return f[app] }

// TestCrashLoop checks that a service in a crash loop makes its app
// unhealthy, even an app with no probe, and that the app is no longer
// unhealthy for it once the loop ended.
func TestCrashLoop(t *testing.T) {
	m, _ := newTest(t, fakeApps{"web": 1}, map[string]*manifest.Manifest{"web": {Name: "web", Apps: map[string]*manifest.App{"web": {Command: "bin/web", Daemon: "simple"}}}})
	svcs := fakeServices{"web": {{App: "web", Service: "web", State: apitypes.ServiceWaiting, CrashLoop: true, Restarts: 5, Message: "exited with status 2"}}}
	m.Services = svcs
	m.Ensure()
	h := m.Health("web")
	if h.Status != Error || h.Source != SourceCrashLoop || h.Message != "service web.web is in a crash loop (5 restarts): exited with status 2" {
		t.Fatalf("got %+v, want the crash loop's error", h)
	}
	if got, err := m.Wait(context.Background(), "web"); err != nil || got.Status != Error {
		t.Errorf("Wait: got %+v, %v, want the error at once", got, err)
	}
	svcs["web"][0].CrashLoop = false
	m.Ensure()
	if h := m.Health("web"); h.Status != Unknown {
		t.Errorf("got %+v, want unknown once the loop ended", h)
	}
}
