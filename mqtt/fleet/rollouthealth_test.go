package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/mqtt"
)

// TestRolloutSoak: with --soak, a device that turns unhealthy after it
// was done and healthy fails, as unhealthy, with its reason; one whose
// health is still waiting when the soak ends fails too; healthy ones
// throughout are done; a reverted refresh counts as reverted.
func TestRolloutSoak(t *testing.T) {
	e := newTestEnv(t)
	modes := []string{fakeDone, fakeSoured, fakeWaiting, fakeReverted, fakeDone}
	e.addDevices(len(modes), func(i int) string { return modes[i] })
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "100%", "--max-failures", "100%", "--soak", "1s", "restart", "hello")
	if err := rollout(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("rollout: %v\n%s", err, stderr.String())
	}
	st := loadLatest(t)
	for i, want := range []struct{ result, msg string }{
		{mqtt.EventDone, ""},
		{resultUnhealthy, "health error during the 1s soak: hello: health check: connection refused"},
		{resultUnhealthy, "not healthy at the end of the 1s soak (health waiting; hello: waiting: warming up)"},
		{resultReverted, "health check failed: hello: GET /health: 500"},
		{mqtt.EventDone, ""},
	} {
		if d := st.Devices[i]; d.Result != want.result || d.Message != want.msg {
			t.Errorf("%s (%s): got %s %q, want %s %q", d.ID, modes[i], d.Result, d.Message, want.result, want.msg)
		}
	}
	c := st.counts(st.Devices)
	if c.Done != 2 || c.Failed != 3 || c.Unhealthy != 2 || c.Reverted != 1 {
		t.Errorf("got counts %+v, want 2 done, 3 failed: 2 unhealthy, 1 reverted", c)
	}
}

// TestRolloutMaxUnhealthy: --max-unhealthy stops the rollout after the
// wave that crosses it, naming the devices and their reasons, though
// --max-failures would let it go on; status shows each wave's counts and
// reasons; a resume needs a higher limit.
func TestRolloutMaxUnhealthy(t *testing.T) {
	e := newTestEnv(t)
	// Wave 1: dev00, dev01 fine; wave 2 (dev02..dev09): two reverted, one soured.
	e.addDevices(20, func(i int) string {
		switch i {
		case 3, 6:
			return fakeReverted
		case 8:
			return fakeSoured
		}
		return fakeDone
	})
	var stdout, stderr bytes.Buffer
	args := e.rolloutArgs("--waves", "10%,50%,100%", "--max-failures", "50%", "--max-unhealthy", "2", "--soak", "1s", "restart", "hello")
	err := rollout(context.Background(), args, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stopped after wave 2/3") {
		t.Fatalf("got %v, want stopped after wave 2/3\n%s", err, stderr.String())
	}
	for _, want := range []string{"3 of 10 devices sent to are unhealthy or reverted (more than --max-unhealthy 2)",
		"dev03 reverted: health check failed: hello: GET /health: 500", "dev06 reverted", "dev08 unhealthy: health error during the 1s soak"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
	if n := e.fleet.countReceived(); n != 10 {
		t.Errorf("got %d devices sent to, want the 10 of waves 1 and 2", n)
	}

	stdout.Reset()
	if err := rollout(context.Background(), []string{"status", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var s RolloutStatus
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Waves) != 3 || s.MaxUnhealthy != "2" || s.Soak != "1s" {
		t.Fatalf("got %d waves, max-unhealthy %q, soak %q, want 3, 2, 1s", len(s.Waves), s.MaxUnhealthy, s.Soak)
	}
	w1, w2, w3 := s.Waves[0], s.Waves[1], s.Waves[2]
	if w1.Devices != 2 || w1.Counts.Done != 2 || len(w1.Reasons) != 0 {
		t.Errorf("wave 1: got %+v, want 2 devices, 2 done", w1)
	}
	if w2.Devices != 8 || w2.Counts.Done != 5 || w2.Counts.Reverted != 2 || w2.Counts.Unhealthy != 1 {
		t.Errorf("wave 2: got %+v, want 8 devices: 5 done, 2 reverted, 1 unhealthy", w2)
	}
	if len(w2.Reasons) != 2 || w2.Reasons[0].Count != 2 || strings.Join(w2.Reasons[0].Devices, ",") != "dev03,dev06" ||
		w2.Reasons[0].Result != resultReverted || w2.Reasons[1].Result != resultUnhealthy {
		t.Errorf("wave 2: got reasons %+v, want reverted (dev03, dev06) then unhealthy", w2.Reasons)
	}
	if w3.Devices != 10 || w3.Counts.Unsent != 10 {
		t.Errorf("wave 3: got %+v, want 10 devices not sent", w3)
	}

	stdout.Reset()
	if err := rollout(context.Background(), []string{"status"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wave 2 (50%, 8 devices): 5 healthy, 1 unhealthy, 2 reverted",
		"  2 reverted: health check failed: hello: GET /health: 500 (dev03, dev06)", "wave 3 (100%, 10 devices): 0 healthy, 10 not sent"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("status: got\n%s\nwant a line %q", stdout.String(), want)
		}
	}

	// Resuming needs a higher limit; --max-unhealthy 3 lets wave 3 go.
	if err := rollout(context.Background(), []string{"resume", "--max-unhealthy", "2"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "not above") {
		t.Errorf("resume with the same limit: got %v, want refused", err)
	}
	if err := rollout(context.Background(), []string{"resume", "--max-unhealthy", "3"}, &stdout, &stderr); err != nil {
		t.Fatalf("resume --max-unhealthy 3: %v\n%s", err, stderr.String())
	}
	// The soak and the limits live on disk with the rollout, for resume.
	if st := loadLatest(t); st.State != rolloutDone || e.fleet.countReceived() != 20 || st.Soak != duration(time.Second) || st.MaxUnhealthy.String() != "3" {
		t.Errorf("got %s with %d sent to, soak %v, max-unhealthy %v; want done on 20, 1s, 3", st.State, e.fleet.countReceived(), time.Duration(st.Soak), st.MaxUnhealthy)
	}
}

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     string
		bad      bool
		over     [2]int // bad, sent
		exceeded bool
	}{
		{in: "2", want: "2", over: [2]int{3, 10}, exceeded: true},
		{in: "2", want: "2", over: [2]int{2, 10}},
		{in: "0", want: "0", over: [2]int{1, 100}, exceeded: true},
		{in: "5%", want: "5%", over: [2]int{5, 100}},
		{in: "5%", want: "5%", over: [2]int{6, 100}, exceeded: true},
		{in: " 2.5% ", want: "2.5%", over: [2]int{1, 10}, exceeded: true},
		{in: "-1", bad: true}, {in: "101%", bad: true}, {in: "x", bad: true}, {in: "", bad: true}, {in: "NaN%", bad: true}, {in: "1.5", bad: true},
	} {
		got, err := parseThreshold(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseThreshold(%q): got %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want || got.exceeded(tc.over[0], tc.over[1]) != tc.exceeded {
			t.Errorf("parseThreshold(%q): got %v %v, exceeded(%d of %d) %v, want %s, %v", tc.in, got, err, tc.over[0], tc.over[1], got.exceeded(tc.over[0], tc.over[1]), tc.want, tc.exceeded)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"2", "5%", "0", "100%", "-1", "1e3", "NaN%", " 3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseThreshold(s)
		if err != nil {
			return
		}
		again, err := parseThreshold(v.String())
		if err != nil || again != v {
			t.Errorf("%q: %v does not read back (%v, %v)", s, v, again, err)
		}
	})
}

// TestRolloutMaxUnhealthyRealLinks rolls a refresh out to 100 devices,
// each with the real device-side link, against mosquitto: in the second
// wave two devices revert their refresh and one turns unhealthy during
// the soak. --max-unhealthy 2 stops the rollout after that wave, the
// devices of the third get nothing, and the error and 'rollout status'
// name the three devices with the reasons they gave.
func TestRolloutMaxUnhealthyRealLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hundred MQTT sessions")
	}
	e := newTestEnv(t)
	f := startRealFleet(t, e, 100, 0)
	const why = "health check failed: web: GET http://127.0.0.1:8080/health: connection refused"
	for _, i := range []int{12, 17} {
		f.devs[i].fail = mqtt.RevertedPrefix + why
	}
	f.devs[25].sour = "web: health check: connection refused"
	var stderr bytes.Buffer
	args := append(e.opArgs(), "--group", "bench", "--waves", "10%,30%,100%", "--max-failures", "50%", "--max-unhealthy", "2",
		"--soak", "2s", "--timeout", "2m", "--wait", "5s", "ping")
	start := time.Now()
	err := rollout(context.Background(), args, io.Discard, &stderr)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "stopped after wave 2/3") {
		t.Fatalf("got %v, want stopped after wave 2/3\n%s", err, stderr.String())
	}
	for _, want := range []string{"3 of 30 devices sent to are unhealthy or reverted (more than --max-unhealthy 2)",
		"dev00012 reverted: " + why, "dev00017 reverted: " + why,
		"dev00025 unhealthy: health error during the 2s soak: web: health check: connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
	for i, d := range f.devs {
		d.mu.Lock()
		n := len(d.applied)
		d.mu.Unlock()
		if want := map[bool]int{true: 1, false: 0}[i < 30]; n != want {
			t.Errorf("%s applied %d commands, want %d", d.id, n, want)
		}
	}
	var out bytes.Buffer
	if err := rollout(context.Background(), []string{"status"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wave 1 (10%, 10 devices): 10 healthy", "wave 2 (30%, 20 devices): 17 healthy, 1 unhealthy, 2 reverted",
		"  2 reverted: " + why + " (dev00012, dev00017)", "  1 unhealthy: health error during the 2s soak: web: health check: connection refused (dev00025)",
		"wave 3 (100%, 70 devices): 0 healthy, 70 not sent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status: got\n%s\nwant a line %q", out.String(), want)
		}
	}
	t.Logf("100 real links, soak 2s: the rollout stopped after wave 2 in %s", took.Round(time.Millisecond))
}

// TestSendReverted: 'fleet send' tells a refresh that undid itself by its
// result, reverted, with the device's reason as the message.
func TestSendReverted(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("sad", fakeReverted, "lab")
	var stdout, stderr bytes.Buffer
	err := Send(append(e.opArgs(), "--device", "sad", "--json", "restart", "hello"), &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "1 reverted") {
		t.Errorf("got %v, stderr %q, want a failure counting 1 reverted", err, stderr.String())
	}
	var res SendResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 1 || res.Devices[0].Result != resultReverted || res.Devices[0].Message != "health check failed: hello: GET /health: 500" {
		t.Errorf("got %+v, want sad reverted with its reason", res.Devices)
	}
}
