package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

// appRevision returns an app-revision assertion, as 'paddock sign' writes.
func appRevision(t *testing.T) []byte {
	t.Helper()
	store, _ := keys.DefaultStore()
	pub, err := store.Create("pub")
	if err != nil {
		t.Fatal(err)
	}
	return asserttest.Revision(t, pub, "hello", func(r *assert.AppRevision) {
		r.Arch, r.SHA256, r.Timestamp = "amd64", strings.Repeat("a", 64), time.Now()
	})
}

// addDevices adds n devices dev00.. to group lab, with mode(i) each.
func (e *testEnv) addDevices(n int, mode func(i int) string) {
	for i := range n {
		e.fleet.add(fmt.Sprintf("dev%02d", i), mode(i), "lab")
	}
}

// loadLatest returns the latest rollout on disk.
func loadLatest(t *testing.T) *rolloutState {
	t.Helper()
	path, err := rolloutPath("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadRollout(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *testEnv) rolloutArgs(extra ...string) []string {
	args := append(e.opArgs(), "--group", "lab", "--timeout", "20s")
	return append(args, extra...)
}

func TestRolloutDone(t *testing.T) {
	e := newTestEnv(t)
	e.addDevices(20, func(int) string { return fakeDone })
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "10%,50%,100%", "--max-failures", "0%", "--wait-healthy", "10s", "restart", "hello")
	if err := rollout(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("rollout: %v\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	if st.State != rolloutDone || len(st.Devices) != 20 || len(st.Waves) != 3 {
		t.Fatalf("got state %s, %d devices, %d waves, want done, 20, 3", st.State, len(st.Devices), len(st.Waves))
	}
	if got := []int{st.Waves[0].Count, st.Waves[1].Count, st.Waves[2].Count}; fmt.Sprint(got) != "[2 10 20]" {
		t.Errorf("got wave counts %v, want [2 10 20]", got)
	}
	for _, d := range st.Devices {
		if d.Result != mqtt.EventDone || d.Command == "" || d.Assertion != "" {
			t.Errorf("got device %+v, want done with its command, the assertion dropped", d)
		}
		if got := e.fleet.received(d.ID); len(got) != 1 || got[0] != d.Command {
			t.Errorf("%s received %v, want [%s]", d.ID, got, d.Command)
		}
	}
	if !strings.Contains(stderr.String(), "wave 3/3") || !strings.Contains(stdout.String(), "20 done") {
		t.Errorf("got stdout %q, stderr %q, want the progress and a summary", stdout.String(), stderr.String())
	}

	stdout.Reset()
	if err := rollout(context.Background(), []string{"status", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var s RolloutStatus
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != st.ID || s.State != rolloutDone || s.Counts.Done != 20 || len(s.Devices) != 20 {
		t.Errorf("got status %+v, want rollout %s done on 20 devices", s, st.ID)
	}
}

func TestRolloutStopsOnFailures(t *testing.T) {
	e := newTestEnv(t)
	// Wave 1 (dev00, dev01) succeeds; 3 of the 8 more in wave 2 fail:
	// 3 of 10 is more than 20%.
	e.addDevices(20, func(i int) string {
		if i >= 4 && i < 7 {
			return fakeFail
		}
		return fakeDone
	})
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "10%,50%,100%", "--max-failures", "20%", "ping")
	err := rollout(context.Background(), args, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stopped after wave 2/3") {
		t.Fatalf("got %v, want stopped after wave 2/3\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	c := st.counts(st.Devices)
	if st.State != rolloutStopped || c.Done != 7 || c.Failed != 3 || c.Unsent != 10 {
		t.Errorf("got %s %+v, want stopped with 7 done, 3 failed, 10 unsent", st.State, c)
	}
	for i := 10; i < 20; i++ {
		if got := e.fleet.received(st.Devices[i].ID); len(got) != 0 {
			t.Errorf("%s of wave 3 received %v, want nothing", st.Devices[i].ID, got)
		}
	}
	// A stopped rollout resumes only with a higher --max-failures.
	if err := rollout(context.Background(), []string{"resume"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--max-failures") {
		t.Errorf("resume: got %v, want a hint at --max-failures", err)
	}
}

func TestRolloutResume(t *testing.T) {
	e := newTestEnv(t)
	// Wave 2 devices hold their answers, so the rollout is interrupted with
	// commands sent and unanswered.
	e.addDevices(20, func(i int) string {
		if i >= 2 && i < 10 {
			return fakeHold
		}
		return fakeDone
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for e.fleet.countReceived() < 10 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "10%,50%,100%", "--max-failures", "0%", "ping")
	err := rollout(ctx, args, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted in wave 2/3") {
		t.Fatalf("got %v, want interrupted in wave 2/3\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	if c := st.counts(st.Devices); st.State != rolloutRunning || c.Done != 2 || c.Pending != 8 || c.Unsent != 10 {
		t.Fatalf("got %s %+v, want running with 2 done, 8 pending, 10 unsent", st.State, c)
	}
	// The held devices apply their command while nobody listens: resuming
	// must learn their results from the replayed answers.
	e.fleet.release()

	stderr.Reset()
	if err := rollout(context.Background(), []string{"resume", st.ID}, &stdout, &stderr); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr.String())
	}
	st = loadLatest(t)
	if st.State != rolloutDone {
		t.Fatalf("got state %s, want done", st.State)
	}
	for i, d := range st.Devices {
		got := e.fleet.received(d.ID)
		if d.Result != mqtt.EventDone || len(got) == 0 {
			t.Errorf("got %+v, received %v, want done", d, got)
		}
		for _, id := range got {
			if id != d.Command {
				t.Errorf("device %d received commands %v, want only %s", i, got, d.Command)
			}
		}
	}
}

func TestRolloutAbort(t *testing.T) {
	e := newTestEnv(t)
	e.addDevices(4, func(i int) string {
		if i == 1 {
			return fakeHold
		}
		return fakeDone
	})
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- rollout(context.Background(), e.rolloutArgs("--waves", "50%,100%", "ping"), &stdout, &stderr)
	}()
	for e.fleet.countReceived() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	var out bytes.Buffer
	if err := rollout(context.Background(), []string{"abort"}, &out, &out); err != nil {
		t.Fatalf("abort: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "aborted") {
			t.Errorf("got %v, want the rollout aborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rollout did not stop after abort")
	}
	st := loadLatest(t)
	if st.State != rolloutAborted || e.fleet.countReceived() != 2 {
		t.Errorf("got %s with %d devices sent to, want aborted with 2", st.State, e.fleet.countReceived())
	}
	if err := rollout(context.Background(), []string{"resume"}, &out, &out); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("resume: got %v, want a refusal of an aborted rollout", err)
	}
	out.Reset()
	if err := rollout(context.Background(), []string{"status"}, &out, &out); err != nil || !strings.Contains(out.String(), "aborted") {
		t.Errorf("status: got %v %q, want aborted", err, out.String())
	}
}

func TestRolloutWaitHealthy(t *testing.T) {
	e := newTestEnv(t)
	e.addDevices(2, func(i int) string { return []string{fakeDone, fakeDegraded}[i] })
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "100%", "--max-failures", "50%", "--wait-healthy", "300ms", "restart", "hello")
	if err := rollout(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("rollout: %v\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	if d := st.Devices[1]; d.Result != resultUnhealthy || !strings.Contains(d.Message, "hello.web crashed") {
		t.Errorf("got %+v, want dev01 unhealthy with its problem", d)
	}
	if d := st.Devices[0]; d.Result != mqtt.EventDone {
		t.Errorf("got %+v, want dev00 done", d)
	}
}

// TestRolloutStopsOnDegraded pins issue 10's "--wait-healthy waits on
// nothing": a device done but reporting degraded held its wave until the
// health deadline (an hour here) and failed without its reasons; now it
// fails at once, saying why, and the rollout stops there.
func TestRolloutStopsOnDegraded(t *testing.T) {
	e := newTestEnv(t)
	e.addDevices(3, func(i int) string { return []string{fakeDegraded, fakeDone, fakeDone}[i] })
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "1,100%", "--max-failures", "0%", "--wait-healthy", "1h", "restart", "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rollout(ctx, args, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("rollout: got %v, want it stopped\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	if d := st.Devices[0]; d.Result != resultUnhealthy || !strings.Contains(d.Message, "degraded") || !strings.Contains(d.Message, "hello.web crashed") {
		t.Errorf("got %+v, want dev00 unhealthy, degraded, with its reason", d)
	}
	if st.State != rolloutStopped || e.fleet.countReceived() != 1 {
		t.Errorf("got %s with %d devices sent to, want stopped after the first", st.State, e.fleet.countReceived())
	}
	if !strings.Contains(stderr.String(), "hello.web crashed") {
		t.Errorf("stderr: got %q, want the reason", stderr.String())
	}
}

func TestParseWaves(t *testing.T) {
	for _, tc := range []struct {
		waves string
		n     int
		want  string
	}{
		{"10%,50%,100%", 20, "[{10 2} {50 10} {100 20}]"},
		{"1%,10%,50%,100%", 10000, "[{1 100} {10 1000} {50 5000} {100 10000}]"},
		{"1%,10%,50%,100%", 3, "[{1 1} {50 2} {100 3}]"},
		{"1,100", 1, "[{1 1}]"},
	} {
		w, err := parseWaves(tc.waves, tc.n)
		if err != nil || fmt.Sprint(w) != tc.want {
			t.Errorf("%s over %d: got %v %v, want %s", tc.waves, tc.n, w, err, tc.want)
		}
	}
	for _, bad := range []string{"50%,10%", "0%", "101%", "x", "NaN", "10,NaN"} {
		if _, err := parseWaves(bad, 10); err == nil {
			t.Errorf("%s: got no error, want one", bad)
		}
	}
}

// The state file must survive a rollout directory that does not exist yet.
func TestRolloutSaveCreatesDir(t *testing.T) {
	t.Setenv("PADDOCK_FLEET_DIR", filepath.Join(t.TempDir(), "new"))
	path, err := rolloutPath("r1")
	if err != nil {
		t.Fatal(err)
	}
	st := &rolloutState{Version: rolloutVersion, ID: "r1", State: rolloutRunning, Waves: []RolloutWave{{100, 1}}}
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseWaves(f *testing.F) {
	f.Add("1%,10%,50%,100%", 10000)
	f.Add("0.5,100", 3)
	f.Add("NaN", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 1 || n > 1e6 {
			return
		}
		waves, err := parseWaves(s, n)
		if err != nil {
			return
		}
		prev := 0
		for _, w := range waves {
			if w.Count <= prev || w.Count > n {
				t.Fatalf("%q over %d: got %v, want increasing counts up to %d", s, n, waves, n)
			}
			prev = w.Count
		}
	})
}
