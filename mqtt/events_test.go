package mqtt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	fill(t, q, 1, EventDone)
	fill(t, q, maxQueueEvents-1, EventProgress)
	for i := uint64(maxQueueEvents + 1); i <= maxQueueEvents+10; i++ {
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
	fill(t, q, maxQueueEvents, EventFailed)
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

// A full queue drops new refusals and counts them, without a disk write,
// rather than pushing out the answers to real commands; an answer pushes
// out the oldest refusal, counted too.
func TestEventQueueCountsDroppedRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.queue")
	q, _ := loadEventQueue(path, t.Logf)
	fill(t, q, 1, EventDone)
	fill(t, q, maxQueueEvents-1, EventRefused)
	before, _ := os.ReadFile(path)
	for i := uint64(maxQueueEvents + 1); i <= 5000; i++ {
		q.add(queuedLine(i, EventRefused))
	}
	after, _ := os.ReadFile(path)
	if len(q.items) != maxQueueEvents || q.dropped.refusals != 5000-maxQueueEvents || q.refusalsDropped.Load() != 5000-maxQueueEvents {
		t.Fatalf("got %d queued and %d refusals dropped, want %d and %d", len(q.items), q.dropped.refusals, maxQueueEvents, 5000-maxQueueEvents)
	}
	if !bytes.Equal(before, after) {
		t.Error("got the queue file rewritten for dropped refusals, want no write")
	}
	q.add(queuedLine(5001, EventFailed))
	if q.items[0].typ != EventDone || q.items[1].seq != 3 || q.items[len(q.items)-1].seq != 5001 {
		t.Errorf("got first %s, then seq %d, last seq %d; want the done kept, the oldest refusal out and the failure in", q.items[0].typ, q.items[1].seq, q.items[len(q.items)-1].seq)
	}
	if q.dropped.refusals != 5000-maxQueueEvents+1 {
		t.Errorf("got %d refusals dropped, want %d", q.dropped.refusals, 5000-maxQueueEvents+1)
	}
	if got := q.dropped.String(); !strings.HasPrefix(got, "4001 refusals dropped since ") {
		t.Errorf("got %q, want the count and since when", got)
	}
	// A refusal takes the place of a progress event.
	q2, _ := loadEventQueue(filepath.Join(t.TempDir(), "events.queue"), t.Logf)
	fill(t, q2, maxQueueEvents, EventProgress)
	q2.add(queuedLine(maxQueueEvents+1, EventRefused))
	if last := q2.items[len(q2.items)-1]; last.typ != EventRefused || q2.dropped.refusals != 0 {
		t.Errorf("got last %s and %d refusals dropped, want the refusal queued over a progress", last.typ, q2.dropped.refusals)
	}
}

// fill queues n more events of type typ with one write, as n calls of add
// would (each of which syncs the file).
func fill(t *testing.T, q *eventQueue, n int, typ string) {
	t.Helper()
	for range n {
		line, ev := queuedLine(q.maxSeq()+1, typ)
		q.items = append(q.items, queuedEvent{line: line, typ: ev.Type, seq: ev.Seq})
		q.size += len(line) + 1
	}
	if err := q.rewrite(); err != nil {
		t.Fatal(err)
	}
}
