package mqtt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func queuedLine(seq uint64, typ string) ([]byte, Event) {
	ev := Event{Command: "c", Device: "dev1", Seq: seq, Type: typ}
	b, _ := json.Marshal(ev)
	return b, ev
}

func TestEventQueueBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.queue")
	q, err := loadEventQueue(path, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// One final event, then progress events past the bound.
	q.add(queuedLine(1, EventDone))
	for i := uint64(2); i <= maxQueueEvents+10; i++ {
		q.add(queuedLine(i, EventProgress))
	}
	if len(q.items) != maxQueueEvents {
		t.Fatalf("got %d queued, want %d", len(q.items), maxQueueEvents)
	}
	if q.items[0].typ != EventDone || q.items[1].seq != 12 {
		t.Errorf("got first %s then seq %d, want the done event kept and the oldest progress dropped", q.items[0].typ, q.items[1].seq)
	}
	again, err := loadEventQueue(path, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.items) != len(q.items) || again.size != q.size || again.maxSeq() != maxQueueEvents+10 {
		t.Errorf("reloaded %d items (%d bytes, max seq %d), want %d (%d bytes, max seq %d)",
			len(again.items), again.size, again.maxSeq(), len(q.items), q.size, maxQueueEvents+10)
	}
}

func TestEventQueueKeepsFinalEvents(t *testing.T) {
	q, _ := loadEventQueue(filepath.Join(t.TempDir(), "events.queue"), t.Logf)
	for i := uint64(1); i <= maxQueueEvents; i++ {
		q.add(queuedLine(i, EventFailed))
	}
	q.add(queuedLine(maxQueueEvents+1, EventProgress))
	if last := q.items[len(q.items)-1]; last.typ != EventFailed {
		t.Errorf("got a %s event queued over final ones, want it dropped", last.typ)
	}
}

func TestEventQueueFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.queue")
	q, _ := loadEventQueue(path, t.Logf)
	for i := uint64(1); i <= 3; i++ {
		q.add(queuedLine(i, EventProgress))
	}
	var sent []string
	n := q.flush(func(b []byte) bool {
		if len(sent) == 2 {
			return false
		}
		sent = append(sent, string(b))
		return true
	})
	if n != 2 || len(q.items) != 1 || q.items[0].seq != 3 {
		t.Fatalf("got %d sent, %d left, want 2 sent and seq 3 left", n, len(q.items))
	}
	q.flush(func([]byte) bool { return true })
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("got %v, want the empty queue's file removed", err)
	}
}

// A power cut while appending leaves a torn last line: the events
// before it are kept.
func TestEventQueueTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.queue")
	good, _ := queuedLine(7, EventDone)
	os.WriteFile(path, append(append(good, '\n'), `{"command":"c","se`...), 0o600)
	q, err := loadEventQueue(path, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.items) != 1 || q.items[0].seq != 7 {
		t.Errorf("got %d items, want the one whole event", len(q.items))
	}
}

func FuzzLoadEventQueue(f *testing.F) {
	good, _ := queuedLine(1, EventDone)
	f.Add(append(good, '\n'))
	f.Add([]byte("{\n}\n\n{\"seq\":-1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "events.queue")
		os.WriteFile(path, data, 0o600)
		q, err := loadEventQueue(path, func(string, ...any) {})
		if err != nil {
			return
		}
		q.add(queuedLine(q.maxSeq()+1, EventDone))
	})
}

func TestSeqSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seq")
	s, err := loadSeq(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 3 {
		last = s.next(t.Logf)
	}
	s2, err := loadSeq(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.next(t.Logf); got <= last {
		t.Errorf("got seq %d after a restart, want more than %d", got, last)
	}
	if s3, _ := loadSeq(path, 5000); s3.next(t.Logf) != 5001 {
		t.Error("got a seq not above the queued events, want one above")
	}
}

func TestAppliedPrune(t *testing.T) {
	now := time.Now()
	restore := timeNow
	timeNow = func() time.Time { return now }
	t.Cleanup(func() { timeNow = restore })

	path := filepath.Join(t.TempDir(), "applied.json")
	a, _ := loadApplied(path)
	done := &Event{Type: EventDone}
	a.put("old", &appliedRecord{Expiry: now.Add(-25 * time.Hour), Final: done})
	a.put("recent", &appliedRecord{Expiry: now.Add(-23 * time.Hour), Final: done})
	a.put("running", &appliedRecord{Expiry: now.Add(-48 * time.Hour)})
	again, err := loadApplied(path)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old": false, "recent": true, "running": true} {
		if got := again.get(id) != nil; got != want {
			t.Errorf("%s: got recorded %v, want %v", id, got, want)
		}
	}
	if got := strings.Join(again.interrupted(), ","); got != "running" {
		t.Errorf("got interrupted %q, want running", got)
	}
}

func TestAppliedCap(t *testing.T) {
	a := &appliedLog{m: map[string]*appliedRecord{}}
	base := time.Now()
	for i := range maxApplied + 5 {
		a.m[fmt.Sprint("c", i)] = &appliedRecord{Recorded: base.Add(time.Duration(i) * time.Second), Final: &Event{}}
	}
	a.prune(base, "c0")
	if len(a.m) != maxApplied || a.m["c0"] == nil || a.m["c1"] != nil || a.m["c6"] == nil {
		t.Errorf("got %d records (c0 %v, c1 %v), want %d, the oldest dropped but the kept one", len(a.m), a.m["c0"] != nil, a.m["c1"] != nil, maxApplied)
	}
}
