package mqtt

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
)

// Regression: under a flood of 5,000 garbage commands received just as the
// broker went out of reach, the refusals past the event queue's bound were
// dropped one by one with a log line each and no count: the operator never
// learnt of them. Now every refusal either reaches the operator or is
// counted in a "dropped" event sent once the queue drains, and in the
// device state's metrics.
func TestRefusalFloodCounted(t *testing.T) {
	const flood = 5000
	b := mosquittotest.Start(t)
	p := startProxy(t, b)
	w := watch(t, b.URL(), "")
	dev := newFakeDevice()
	dev.gate = make(chan struct{})
	open := sync.OnceFunc(func() { close(dev.gate) })
	cfg := testConfig(t, p.URL(), t.TempDir())
	// The ping answer waits behind the flood in the connection: a short
	// keep-alive would drop the connection on a loaded machine, and the
	// broker would deliver the whole flood again.
	cfg.KeepAlive = 30 * time.Second
	l := startLink(t, cfg, dev)
	t.Cleanup(open) // before the link's Close, which waits for Verify
	w.waitPresence(t, true, time.Now().Add(-time.Second))

	// The device takes the whole flood in while it checks the first one.
	gate := bundle("gate")
	gate.Refuse = "refused at the gate"
	w.send(t, CmdTopic("dev1"), gate.bytes())
	for i := range flood {
		tok := w.c.Publish(CmdTopic("dev1"), 1, false, []byte("garbage"))
		if i == flood-1 && (!tok.WaitTimeout(10*time.Second) || tok.Error() != nil) {
			t.Fatalf("cannot send the flood: %v", tok.Error())
		}
	}
	pending := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.pending)
	}
	for start := time.Now(); pending() < flood; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("got %d of the flood of %d at the device after 30s, want all", pending(), flood)
		}
	}
	p.pause(true)
	testutil.WaitFor(t, "the link down", 10*time.Second, func() bool { return !l.Connected() })
	open()
	testutil.WaitFor(t, "the flood refused", 30*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.working
	})
	if got, want := l.queue.refusalsDropped.Load(), uint64(flood+1-maxQueueEvents); got != want {
		t.Errorf("got %d refusals dropped while down, want %d (the queue holds %d)", got, want, maxQueueEvents)
	}

	// The broker is back: the queue drains and the count follows. The
	// broker also delivers the unacknowledged flood again, refused again.
	p.pause(false)
	seen := map[uint64]bool{}
	var refusals, counted uint64
	var report *Event
	for report == nil || refusals+counted != uint64(dev.refused.Load()) {
		ev := w.next(t)
		if seen[ev.Seq] {
			continue // delivered at least once
		}
		seen[ev.Seq] = true
		switch ev.Type {
		case EventRefused:
			refusals++
		case EventDropped:
			counted += ev.Count
			if report == nil {
				report = &ev
			}
		}
	}
	t.Logf("%d refusals: %d delivered, %d counted in %q", dev.refused.Load(), refusals, counted, report.Message)
	// A refusal of the flood delivered again may still find the queue
	// full: it is counted too.
	if want := fmt.Sprintf("%d refusals dropped since ", report.Count); report.Count < flood+1-maxQueueEvents || !strings.HasPrefix(report.Message, want) {
		t.Errorf("got report %+v, want at least %d refusals dropped since when", report, flood+1-maxQueueEvents)
	}
	// The broker may deliver more of the flood again after the loop
	// above, refused and dropped once more: keep counting the events
	// while waiting for the state to catch up with them. (Waiting for the
	// count at the loop's end failed at load 15: the state went past it.)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.events:
			if !seen[ev.Seq] && ev.Type == EventDropped {
				counted += ev.Count
			}
			seen[ev.Seq] = true
		case s := <-w.states:
			if s.Metrics.RefusalsDropped == counted {
				return
			}
		case <-deadline:
			t.Fatalf("no state counting the %d refusals dropped within 30s", counted)
		}
	}
}
