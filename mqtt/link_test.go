package mqtt

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
)

// ready starts a broker, a watcher and a link, and waits until the link
// is online (its subscriptions made).
func ready(t *testing.T) (*mosquittotest.Broker, *watcher, *fakeDevice, *Link, string) {
	t.Helper()
	b := mosquittotest.Start(t)
	w := watch(t, b.URL(), "")
	dev, dir := newFakeDevice(), t.TempDir()
	start := time.Now().Add(-time.Second)
	l := startLink(t, testConfig(t, b.URL(), dir), dev)
	w.waitPresence(t, true, start)
	return b, w, dev, l, dir
}

func TestCommandRoundTrip(t *testing.T) {
	_, w, dev, _, _ := ready(t)
	w.send(t, CmdTopic("dev1"), bundle("c1").bytes())
	evs := w.expect(t, "c1", EventAccepted, EventProgress, EventDone)
	if evs[1].Step != "download" || evs[1].Percent != 10 {
		t.Errorf("got progress %q %d, want download 10", evs[1].Step, evs[1].Percent)
	}
	if got, want := string(evs[2].Result), `{"pong":"c1"}`; got != want {
		t.Errorf("got result %s, want %s", got, want)
	}
	if got := dev.appliedIDs(); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("got applied %v, want [c1]", got)
	}
}

func TestCommandFailed(t *testing.T) {
	_, w, _, _, _ := ready(t)
	bu := bundle("c2")
	bu.Action, bu.Args.Name = ActionRemove, "hello"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	evs := w.expect(t, "c2", EventAccepted, EventProgress, EventFailed)
	if want := "cannot remove hello: not installed"; evs[2].Message != want {
		t.Errorf("got message %q, want %q", evs[2].Message, want)
	}
}

func TestReplay(t *testing.T) {
	_, w, dev, _, dir := ready(t)
	w.send(t, CmdTopic("dev1"), bundle("c1").bytes())
	first := w.expect(t, "c1", EventAccepted, EventProgress, EventDone)
	w.send(t, CmdTopic("dev1"), bundle("c1").bytes())
	again := w.expect(t, "c1", EventDone)[0]
	if !again.Replayed || string(again.Result) != string(first[2].Result) {
		t.Errorf("got %+v, want the recorded done event, replayed", again)
	}
	if again.Seq <= first[2].Seq {
		t.Errorf("got seq %d, want more than %d", again.Seq, first[2].Seq)
	}
	if got := dev.appliedIDs(); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("got applied %v, want [c1] (once)", got)
	}
	a, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.get("c1"); r == nil || r.Final == nil || r.Final.Type != EventDone {
		t.Errorf("got record %+v, want a done event", r)
	}
}

func TestRefused(t *testing.T) {
	_, w, dev, _, _ := ready(t)
	bu := bundle("c3")
	bu.Refuse = "cannot check command c3: signature by key 3F2A is not trusted"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	ev := w.expect(t, "c3", EventRefused)[0]
	if ev.Message != bu.Refuse {
		t.Errorf("got message %q, want %q", ev.Message, bu.Refuse)
	}
	w.send(t, CmdTopic("dev1"), []byte("garbage"))
	w.expect(t, "unknown", EventRefused)
	// Replay protection needs an expiry.
	bu = bundle("c4")
	bu.Expiry = time.Time{}
	w.send(t, CmdTopic("dev1"), bu.bytes())
	if ev := w.expect(t, "c4", EventRefused)[0]; !strings.Contains(ev.Message, "no expiry") {
		t.Errorf("got %q, want a refusal for the missing expiry", ev.Message)
	}
	if got := dev.appliedIDs(); len(got) != 0 {
		t.Errorf("got applied %v, want none", got)
	}
}

func TestGroupCommand(t *testing.T) {
	_, w, _, _, _ := ready(t)
	bu := bundle("g1")
	bu.Target = "group/lab"
	w.send(t, GroupTopic("lab"), bu.bytes())
	w.expect(t, "g1", EventAccepted, EventProgress, EventDone)
}

// A command sent while the device is offline waits in its persistent
// session and is applied when it comes back.
func TestOfflineDelivery(t *testing.T) {
	b, w, dev, l, dir := ready(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w.waitPresence(t, false, time.Time{})
	w.send(t, CmdTopic("dev1"), bundle("c4").bytes())
	startLink(t, testConfig(t, b.URL(), dir), dev)
	w.expect(t, "c4", EventAccepted, EventProgress, EventDone)
}

func TestBrokerKillRestart(t *testing.T) {
	b, w, _, l, _ := ready(t)
	b.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for l.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Connected() {
		t.Fatal("the link still says connected after the broker was killed")
	}
	restarted := time.Now()
	b.Restart()
	w.waitPresence(t, true, restarted)
	w.send(t, CmdTopic("dev1"), bundle("c5").bytes())
	w.expect(t, "c5", EventAccepted, EventProgress, EventDone)
}

// Events produced while the broker is unreachable wait on disk and go out
// in order when it is back. (The broker stays up behind a proxy, so that
// the watcher misses nothing: TestBrokerKillRestart covers a restart.)
func TestEventsQueuedWhileDown(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b)
	w := watch(t, b.URL(), "")
	dev, dir := newFakeDevice(), t.TempDir()
	l := startLink(t, testConfig(t, p.URL(), dir), dev)
	w.waitPresence(t, true, time.Now().Add(-time.Second))
	bu := bundle("c6")
	bu.Args.Name = "block"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	before := w.expect(t, "c6", EventAccepted, EventProgress)

	p.pause(true)
	for l.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	close(dev.release)
	queue := filepath.Join(dir, "events.queue")
	testutil.WaitFor(t, "the progress and done events queued on disk", 10*time.Second, func() bool {
		q, _ := loadEventQueue(queue, t.Logf)
		return len(q.items) == 2
	})
	p.pause(false)
	// Delivery is at least once: an event whose acknowledgement was cut
	// off comes again, with its seq, and is dropped by seq.
	var after []Event
	for len(after) < 2 {
		if ev := w.next(t); ev.Seq > before[1].Seq {
			after = append(after, ev)
		}
	}
	if after[0].Type != EventProgress || after[0].Step != "install" || after[1].Type != EventDone || after[1].Seq <= after[0].Seq {
		t.Errorf("got %+v then %+v, want the install progress then done", after[0], after[1])
	}
	testutil.WaitFor(t, "the event queue gone from disk once sent", 5*time.Second, func() bool {
		_, err := os.Stat(queue)
		return os.IsNotExist(err)
	})
}

// A command interrupted by a stop is reported failed on the next start,
// never applied again.
func TestInterruptedCommand(t *testing.T) {
	b, w, dev, l, dir := ready(t)
	bu := bundle("c7")
	bu.Args.Name = "block"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	w.expect(t, "c7", EventAccepted, EventProgress)
	l.Close()
	startLink(t, testConfig(t, b.URL(), dir), dev)
	ev := w.expect(t, "c7", EventFailed)[0]
	if ev.Message != msgInterrupted {
		t.Errorf("got message %q, want %q", ev.Message, msgInterrupted)
	}
	w.send(t, CmdTopic("dev1"), bu.bytes())
	// Delivery is at least once: the first failure can come again, with
	// its seq, before the replay (a fresh-root CI run got it).
	replay := w.expect(t, "c7", EventFailed)[0]
	for replay.Seq == ev.Seq {
		replay = w.expect(t, "c7", EventFailed)[0]
	}
	if !replay.Replayed {
		t.Errorf("got %+v, want the failure replayed", replay)
	}
	if got := dev.appliedIDs(); !slices.Equal(got, []string{"c7"}) {
		t.Errorf("got applied %v, want [c7] (once)", got)
	}
}

// TestInterruptedChangeAnswersItsOutcome pins issue 10's "the command is
// reported failed while the change resumes and finishes": a command that
// started a change of the agent and was cut by a restart is answered with
// that change's outcome (done), once, and never applied again; one that
// started no change is still answered failed, interrupted.
func TestInterruptedChangeAnswersItsOutcome(t *testing.T) {
	b, w, dev, l, dir := ready(t)
	bu := bundle("c8")
	bu.Action, bu.Args.Name, bu.Args.Value = ActionRemove, "block", "17"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	w.expect(t, "c8", EventAccepted, EventProgress)
	// The change id is in the journal before the agent stops.
	testutil.WaitFor(t, "change 17 recorded", 10*time.Second, func() bool {
		r := l.applied.get("c8")
		return r != nil && r.Change == "17"
	})
	l.Close()

	dev.setChange("17", nil) // the change went on and ended done
	l2 := startLink(t, testConfig(t, b.URL(), dir), dev)
	ev := w.expect(t, "c8", EventDone)[0]
	if string(ev.Result) != `{"change":"17"}` {
		t.Errorf("got result %s, want the change's", ev.Result)
	}
	if got := dev.resumedIDs(); !slices.Equal(got, []string{"c8@17"}) {
		t.Errorf("got resumed %v, want [c8@17]", got)
	}
	// Answered once: the journal says so, and another start is silent.
	if r := l2.applied.get("c8"); r == nil || r.Final == nil || r.Final.Type != EventDone || r.Change != "17" {
		t.Fatalf("got record %+v, want c8 done with change 17", r)
	}
	l2.Close()
	startLink(t, testConfig(t, b.URL(), dir), dev)
	w.send(t, CmdTopic("dev1"), bu.bytes())
	if ev := w.expect(t, "c8", EventDone)[0]; !ev.Replayed {
		t.Errorf("got %+v, want the done answer replayed", ev)
	}
	if got := dev.resumedIDs(); len(got) != 1 {
		t.Errorf("got resumed %v, want one resume", got)
	}
	if got := dev.appliedIDs(); !slices.Equal(got, []string{"c8"}) {
		t.Errorf("got applied %v, want [c8] (once)", got)
	}
}

// A resumed command whose change failed is answered with the change's
// error, not as interrupted.
func TestResumedCommandAnswersItsFailure(t *testing.T) {
	b, w, dev, l, dir := ready(t)
	bu := bundle("c9")
	bu.Action, bu.Args.Name, bu.Args.Value = ActionRemove, "block", "18"
	w.send(t, CmdTopic("dev1"), bu.bytes())
	w.expect(t, "c9", EventAccepted, EventProgress)
	testutil.WaitFor(t, "change 18 recorded", 10*time.Second, func() bool { r := l.applied.get("c9"); return r != nil && r.Change == "18" })
	l.Close()
	dev.setChange("18", errors.New("cannot remove block: it ran away"))
	startLink(t, testConfig(t, b.URL(), dir), dev)
	if ev := w.expect(t, "c9", EventFailed)[0]; ev.Message != "cannot remove block: it ran away" {
		t.Errorf("got %q, want the change's error", ev.Message)
	}
}

func TestPresence(t *testing.T) {
	b := mosquittotest.Start(t)
	w := watch(t, b.URL(), "")
	l := startLink(t, testConfig(t, b.URL(), t.TempDir()), newFakeDevice())
	w.waitPresence(t, true, time.Now().Add(-time.Second))

	// Retained: a newcomer sees it.
	late := watch(t, b.URL(), "")
	late.waitPresence(t, true, time.Time{})

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	w.waitPresence(t, false, time.Time{})
	watch(t, b.URL(), "").waitPresence(t, false, time.Time{})
}

func TestPresenceWill(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b)
	w := watch(t, b.URL(), "")
	startLink(t, testConfig(t, p.URL(), t.TempDir()), newFakeDevice())
	w.waitPresence(t, true, time.Now().Add(-time.Second))
	p.cut()
	w.waitPresence(t, false, time.Time{})
	watch(t, b.URL(), "").waitPresence(t, false, time.Time{})
}

func TestState(t *testing.T) {
	b := mosquittotest.Start(t)
	w := watch(t, b.URL(), "")
	dev := newFakeDevice()
	dev.setApps(AppState{Name: "hello", Version: "1.0", Revision: 1})
	l := startLink(t, testConfig(t, b.URL(), t.TempDir()), dev)
	s := w.waitState(t, func(s State) bool { return len(s.Apps) == 1 })
	if s.Device != "dev1" || !slices.Equal(s.Groups, []string{"lab"}) || s.AgentVersion != "test" || s.Time.IsZero() {
		t.Errorf("got state %+v, want device, groups, agent version and time filled in", s)
	}
	if s.Metrics.Uptime <= 0 || s.Metrics.MemAvailable == 0 || s.Metrics.DiskFree == 0 {
		t.Errorf("got metrics %+v, want uptime, memory and disk", s.Metrics)
	}

	dev.setApps(AppState{Name: "hello", Version: "1.1", Revision: 2})
	for range 5 {
		l.Changed() // debounced: one publication
	}
	w.waitState(t, func(s State) bool { return len(s.Apps) == 1 && s.Apps[0].Revision == 2 })
	select {
	case s := <-w.states:
		t.Errorf("got a second state %+v, want one for a burst of changes", s)
	case <-time.After(2 * debounceDelay):
	}
	watch(t, b.URL(), "").waitState(t, func(s State) bool { return len(s.Apps) == 1 && s.Apps[0].Revision == 2 })
}

func TestStateInterval(t *testing.T) {
	b := mosquittotest.Start(t)
	w := watch(t, b.URL(), "")
	cfg := testConfig(t, b.URL(), t.TempDir())
	cfg.StateInterval = 100 * time.Millisecond
	startLink(t, cfg, newFakeDevice())
	first := w.waitState(t, func(State) bool { return true })
	w.waitState(t, func(s State) bool { return s.Time.After(first.Time) })
}

// A broker down at start is not an error: the link keeps trying.
func TestBrokerDownAtStart(t *testing.T) {
	b := mosquittotest.Start(t)
	b.Stop()
	l := startLink(t, testConfig(t, b.URL(), t.TempDir()), newFakeDevice())
	time.Sleep(300 * time.Millisecond)
	b.Restart()
	w := watch(t, b.URL(), "")
	w.waitPresence(t, true, time.Time{})
	if !l.Connected() {
		t.Error("got Connected() false, want true")
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{DeviceID: "d", StoreDir: "x"},
		{Brokers: []string{"tcp://127.0.0.1:1"}, DeviceID: "a/b", StoreDir: "x"},
		{Brokers: []string{"tcp://127.0.0.1:1"}, DeviceID: "d", Groups: []string{"#"}, StoreDir: "x"},
		{Brokers: []string{"tcp://127.0.0.1:1"}, DeviceID: "d"},
	} {
		if _, err := Start(t.Context(), c, newFakeDevice()); err == nil {
			t.Errorf("Start(%+v): got no error, want one", c)
		}
	}
}

// TestRetryConnectsAtOnce: a link waiting out its backoff before trying
// its first connection again tries at once on Retry (the agent calls it
// when the network comes up), not after the backoff.
func TestRetryConnectsAtOnce(t *testing.T) {
	testutil.Replace(t, &backoffBase, 20*time.Second) // a first wait of 10-20 s
	b := mosquittotest.Start(t)
	b.Stop()
	cfg := testConfig(t, b.URL(), t.TempDir())
	cfg.MaxBackoff = time.Minute
	failed := make(chan struct{}, 10)
	logf := cfg.Logf
	cfg.Logf = func(format string, args ...any) {
		if strings.HasPrefix(format, "mqtt: cannot connect") {
			failed <- struct{}{}
		}
		logf(format, args...)
	}
	l := startLink(t, cfg, newFakeDevice())
	select {
	case <-failed:
	case <-time.After(20 * time.Second):
		t.Fatal("no failed connection within 20 s")
	}
	b.Restart()
	begin := time.Now()
	l.Retry()
	testutil.WaitFor(t, "the link connected after Retry", 8*time.Second, l.Connected)
	t.Logf("connected %v after Retry", time.Since(begin).Round(time.Millisecond))
}
