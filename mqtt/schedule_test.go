package mqtt

import (
	"slices"
	"testing"
)

// collect reads events until done says the events so far are enough,
// failing the test if they take more than 10s.
func (w *watcher) collect(t *testing.T, done func(byCmd map[string][]Event) bool) map[string][]Event {
	t.Helper()
	byCmd := map[string][]Event{}
	for !done(byCmd) {
		ev := w.next(t)
		byCmd[ev.Command] = append(byCmd[ev.Command], ev)
	}
	return byCmd
}

// final returns the final event of evs, or nil.
func final(evs []Event) *Event {
	for i := range evs {
		if evs[i].Final() {
			return &evs[i]
		}
	}
	return nil
}

func finished(ids ...string) func(map[string][]Event) bool {
	return func(m map[string][]Event) bool {
		for _, id := range ids {
			if final(m[id]) == nil {
				return false
			}
		}
		return true
	}
}

// types lists the types (and steps) of evs.
func types(evs []Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Type+" "+ev.Step)
	}
	return s
}

func appCommand(id, action, app string) []byte {
	b := bundle(id)
	b.Action, b.Args.Name = action, app
	return b.bytes()
}

// Regression: the link applied commands one at a time, so a download
// stalled by a slow mirror held back every later command, pings included.
// Now a ping and a command for another app are answered while the
// command of app "block" waits; a second command for "block" waits for
// the first.
func TestStalledAppDoesNotHoldOthers(t *testing.T) {
	_, w, dev, _, _ := ready(t)
	w.send(t, CmdTopic("dev1"), appCommand("a1", ActionInstall, "block"))
	w.expect(t, "a1", EventAccepted, EventProgress)

	w.send(t, CmdTopic("dev1"), bundle("p1").bytes())
	w.send(t, CmdTopic("dev1"), appCommand("r1", ActionRemove, "other"))
	w.send(t, CmdTopic("dev1"), appCommand("a2", ActionInstall, "block"))
	got := w.collect(t, func(m map[string][]Event) bool {
		return finished("p1", "r1")(m) && len(m["a2"]) >= 2
	})
	if ev := final(got["p1"]); ev.Type != EventDone {
		t.Errorf("ping: got %+v, want done while a1 waits", ev)
	}
	if ev := final(got["r1"]); ev.Type != EventFailed || ev.Message != "cannot remove other: not installed" {
		t.Errorf("command for another app: got %+v, want its own failure while a1 waits", ev)
	}
	if want := []string{"accepted ", "progress queued behind the earlier commands for app block"}; !slices.Equal(types(got["a2"][:2]), want) {
		t.Errorf("second command for app block: got %q, want %q", types(got["a2"]), want)
	}
	if applied := dev.appliedIDs(); slices.Contains(applied, "a2") || len(got["a1"]) > 0 {
		t.Errorf("got a2 applied (%v) or a1 answered (%v) while a1 waits, want neither", applied, types(got["a1"]))
	}

	close(dev.release)
	got = w.collect(t, finished("a1", "a2"))
	a1, a2 := final(got["a1"]), final(got["a2"])
	if a1.Type != EventDone || a2.Type != EventDone {
		t.Fatalf("got a1 %+v and a2 %+v, want both done", a1, a2)
	}
	if first := got["a2"][0]; first.Seq < a1.Seq {
		t.Errorf("got a2's progress (seq %d) before a1's end (seq %d), want a2 to start after a1", first.Seq, a1.Seq)
	}
	if applied := dev.appliedIDs(); !slices.Equal(applied, []string{"a1", "p1", "r1", "a2"}) {
		t.Errorf("got applied %v, want a1, p1, r1, a2", applied)
	}
}

// A command for the whole device waits for those before it and holds
// back those after it; pings go on.
func TestDeviceCommandRunsAlone(t *testing.T) {
	_, w, dev, _, _ := ready(t)
	w.send(t, CmdTopic("dev1"), appCommand("a1", ActionInstall, "block"))
	w.expect(t, "a1", EventAccepted, EventProgress)
	w.send(t, CmdTopic("dev1"), appCommand("b1", ActionReboot, ""))
	w.send(t, CmdTopic("dev1"), appCommand("r1", ActionRemove, "other"))
	w.send(t, CmdTopic("dev1"), bundle("p1").bytes())
	got := w.collect(t, func(m map[string][]Event) bool {
		return finished("p1")(m) && len(m["b1"]) >= 2 && len(m["r1"]) >= 2
	})
	if want := []string{"accepted ", "progress queued until the commands before it end"}; !slices.Equal(types(got["b1"]), want) {
		t.Errorf("reboot: got %q, want %q", types(got["b1"]), want)
	}
	if want := []string{"accepted ", "progress queued behind a command for the whole device"}; !slices.Equal(types(got["r1"]), want) {
		t.Errorf("command after the reboot: got %q, want %q", types(got["r1"]), want)
	}
	close(dev.release)
	got = w.collect(t, finished("a1", "b1", "r1"))
	a1, b1, r1 := final(got["a1"]), final(got["b1"]), final(got["r1"])
	if !(a1.Seq < b1.Seq && b1.Seq < r1.Seq) {
		t.Errorf("got the ends of a1, b1, r1 at seq %d, %d, %d, want in that order", a1.Seq, b1.Seq, r1.Seq)
	}
	if applied := dev.appliedIDs(); !slices.Equal(applied, []string{"a1", "p1", "b1", "r1"}) {
		t.Errorf("got applied %v, want a1, p1, b1, r1", applied)
	}
}

// A command still waiting for its turn when the link closes is answered
// failed, not started; the one running is reported interrupted.
func TestQueuedAtClose(t *testing.T) {
	b, w, dev, l, dir := ready(t)
	w.send(t, CmdTopic("dev1"), appCommand("a1", ActionInstall, "block"))
	w.expect(t, "a1", EventAccepted, EventProgress)
	w.send(t, CmdTopic("dev1"), appCommand("a2", ActionRefresh, "block"))
	w.expect(t, "a2", EventAccepted, EventProgress)
	l.Close()
	if ev := w.expect(t, "a2", EventFailed)[0]; ev.Message != msgNotStarted {
		t.Errorf("got %q, want %q", ev.Message, msgNotStarted)
	}
	startLink(t, testConfig(t, b.URL(), dir), dev)
	if ev := w.expect(t, "a1", EventFailed)[0]; ev.Message != msgInterrupted {
		t.Errorf("got %q, want %q", ev.Message, msgInterrupted)
	}
	if applied := dev.appliedIDs(); !slices.Equal(applied, []string{"a1"}) {
		t.Errorf("got applied %v, want a1 only", applied)
	}
}

func TestLaneOf(t *testing.T) {
	tests := []struct {
		cmd  Command
		want lane
	}{
		{Command{Action: ActionPing}, lane{immediate: true}},
		{Command{Action: ActionReboot}, lane{exclusive: true}},
		{Command{Action: ActionBaseUpdate, App: "x"}, lane{exclusive: true}},
		{Command{Action: ActionConfigSet}, lane{name: "config"}},
		{Command{Action: ActionInstall, App: "hello"}, lane{name: "app/hello"}},
		{Command{Action: ActionRemove}, lane{exclusive: true}},
	}
	for _, tt := range tests {
		if got := laneOf(&tt.cmd); got != tt.want {
			t.Errorf("laneOf(%s %q) = %+v, want %+v", tt.cmd.Action, tt.cmd.App, got, tt.want)
		}
	}
}

// Regression: with commands running side by side, a command delivered
// again while it still ran was answered "failed: interrupted by a
// restart" (a replay found its record without an end). Now the repeat is
// answered "accepted", replayed, and the command ends once.
func TestRepeatWhileRunning(t *testing.T) {
	_, w, dev, _, _ := ready(t)
	a1 := appCommand("a1", ActionInstall, "block")
	w.send(t, CmdTopic("dev1"), a1)
	w.expect(t, "a1", EventAccepted, EventProgress)
	w.send(t, CmdTopic("dev1"), a1)
	if ev := w.expect(t, "a1", EventAccepted)[0]; !ev.Replayed {
		t.Errorf("got %+v, want accepted, replayed", ev)
	}
	close(dev.release)
	if ev := w.expect(t, "a1", EventProgress, EventDone)[1]; ev.Replayed {
		t.Errorf("got %+v, want the one real answer", ev)
	}
	if applied := dev.appliedIDs(); !slices.Equal(applied, []string{"a1"}) {
		t.Errorf("got applied %v, want a1 once", applied)
	}
}
