package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
)

// Bounds of the on-disk event queue.
const (
	maxQueueEvents = 1000
	maxQueueBytes  = 1 << 20
	// seqBlock is how many sequence numbers are reserved by one write of
	// the seq file: numbers stay increasing across restarts (with gaps)
	// for one small write per seqBlock events.
	seqBlock = 1024
)

var timeNow = time.Now

// emit numbers ev and publishes it, or queues it when it cannot be
// published now. record, if not nil, runs first with the numbered event.
func (l *Link) emit(ev Event, record func(Event)) {
	l.evMu.Lock()
	defer l.evMu.Unlock()
	l.emitLocked(ev, record)
}

// emitLocked is emit with l.evMu held.
func (l *Link) emitLocked(ev Event, record func(Event)) {
	ev.Device = l.cfg.DeviceID
	ev.Time = timeNow().UTC()
	ev.Seq = l.seq.next(l.logf)
	if record != nil {
		record(ev)
	}
	line, err := json.Marshal(ev)
	if err != nil {
		l.logf("mqtt: internal error: cannot encode event: %v", err)
		return
	}
	if l.queue.empty() {
		if l.publish(EventsTopic(l.cfg.DeviceID), line, false) != failed {
			return
		}
		l.queue.add(line, ev)
		return
	}
	// Older events wait: this one goes after them.
	l.queue.add(line, ev)
	l.flushLocked()
}

// flushLocked publishes queued events in order, stopping at the first
// that cannot be published. l.evMu must be held.
func (l *Link) flushLocked() {
	if l.queue.empty() || !l.client.IsConnectionOpen() {
		return
	}
	n := l.queue.flush(func(line []byte) bool {
		return l.publish(EventsTopic(l.cfg.DeviceID), line, false) == sent
	})
	if n > 0 {
		l.logf("mqtt: sent %d queued events", n)
	}
	l.reportDroppedLocked()
}

// reportDroppedLocked tells the operator, in one event, how many final
// events the full queue dropped, once the queue has room for it again
// (or the link closes). l.evMu must be held.
func (l *Link) reportDroppedLocked() {
	q := l.queue
	if q.dropped.refusals+q.dropped.answers == 0 {
		return
	}
	if len(q.items) >= maxQueueEvents {
		if !l.isClosed() {
			return // once the queue drains
		}
		q.makeRoom() // closing: the count must not be lost
	}
	d := q.dropped
	q.dropped = dropCount{}
	msg := d.String() + " (the device's event queue was full: the broker was out of reach)"
	l.logf("mqtt: %s", msg)
	l.emitLocked(Event{Type: EventDropped, Count: d.refusals + d.answers, Message: msg}, nil)
	l.Changed() // the state's counts
}

// seqCounter hands out event numbers, persisted in blocks.
type seqCounter struct {
	path       string
	cur, limit uint64
}

func loadSeq(path string, atLeast uint64) (*seqCounter, error) {
	s := &seqCounter{path: path, cur: 1}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cannot read event numbers: %w", err)
	default:
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot read event numbers from %s: %w (remove the file to start again)", path, err)
		}
		s.cur = n
	}
	s.cur = max(s.cur, atLeast+1)
	s.limit = s.cur
	return s, nil
}

func (s *seqCounter) next(logf func(string, ...any)) uint64 {
	if s.cur >= s.limit {
		s.limit = s.cur + seqBlock
		if err := atomicfile.WriteFile(s.path, []byte(strconv.FormatUint(s.limit, 10)+"\n"), 0o600); err != nil {
			logf("mqtt: %v", err)
		}
	}
	s.cur++
	return s.cur - 1
}

// eventQueue is the bounded on-disk queue of undelivered events, JSON
// lines in order. It is kept in memory too; the file exists only while
// the queue is not empty.
type eventQueue struct {
	path  string
	logf  func(string, ...any)
	items []queuedEvent
	size  int
	// dropped counts the final events dropped since the last report;
	// the totals count them since the start, for the state.
	dropped                         dropCount
	refusalsDropped, answersDropped atomic.Uint64
}

// dropCount is how many final events were dropped, and since when.
type dropCount struct {
	refusals, answers uint64
	since             time.Time
}

func (d dropCount) String() string {
	var parts []string
	if d.refusals > 0 {
		parts = append(parts, plural(d.refusals, "refusal"))
	}
	if d.answers > 0 {
		parts = append(parts, plural(d.answers, "answer")+" (done or failed)")
	}
	return fmt.Sprintf("%s dropped since %s", strings.Join(parts, " and "), d.since.UTC().Format(time.RFC3339))
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// drop counts a final event that the full queue could not keep.
func (q *eventQueue) drop(typ string) {
	if q.dropped.refusals+q.dropped.answers == 0 {
		q.dropped.since = timeNow()
		q.logf("mqtt: event queue full (%d events): counting the answers dropped from now on", len(q.items))
	}
	if typ == EventRefused {
		q.dropped.refusals++
		q.refusalsDropped.Add(1)
		return
	}
	q.dropped.answers++
	q.answersDropped.Add(1)
}

type queuedEvent struct {
	line []byte
	typ  string
	seq  uint64
}

// rank orders what a full queue drops first: progress, then accepted,
// then refusals (a flood of garbage must not push out the answers to
// real commands), then answers, then the counts of dropped events.
func rank(typ string) int {
	switch typ {
	case EventProgress:
		return 0
	case EventAccepted:
		return 1
	case EventRefused:
		return 2
	case EventDropped:
		return 4
	}
	return 3
}

func loadEventQueue(path string, logf func(string, ...any)) (*eventQueue, error) {
	q := &eventQueue{path: path, logf: logf}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the event queue: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var ev Event
		if len(line) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			// A line torn by a power cut: the events before it are whole.
			logf("mqtt: dropping a damaged line of %s: %v", path, err)
			continue
		}
		q.items = append(q.items, queuedEvent{line: bytes.Clone(line), typ: ev.Type, seq: ev.Seq})
		q.size += len(line) + 1
	}
	return q, nil
}

func (l *Link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (q *eventQueue) empty() bool { return len(q.items) == 0 }

func (q *eventQueue) maxSeq() uint64 {
	var m uint64
	for _, it := range q.items {
		m = max(m, it.seq)
	}
	return m
}

// add appends an event, dropping the oldest of the lowest rank (see rank)
// to stay within bounds, or the new event itself when nothing queued
// ranks below it. A dropped final event is counted, and the count is
// reported once the queue drains (reportDroppedLocked): nothing is
// dropped without a word, and a flood of refusals costs no disk write.
func (q *eventQueue) add(line []byte, ev Event) {
	it := queuedEvent{line: line, typ: ev.Type, seq: ev.Seq}
	rewrite := false
	for len(q.items) > 0 && (len(q.items)+1 > maxQueueEvents || q.size+len(line)+1 > maxQueueBytes) {
		i := q.victim()
		v := q.items[i].typ
		switch {
		case rank(v) < rank(it.typ), rank(v) == rank(it.typ) && rank(v) < rank(EventRefused):
			// The queued one goes: a newer progress says more than an older.
		case rank(it.typ) < rank(EventRefused):
			return // progress or accepted: not worth an answer's place
		case it.typ == EventRefused:
			q.drop(it.typ) // the older refusals stay
			return
		}
		if rank(v) >= rank(EventRefused) && v != EventDropped {
			q.drop(v)
		}
		q.size -= len(q.items[i].line) + 1
		q.items = append(q.items[:i], q.items[i+1:]...)
		rewrite = true
	}
	q.items = append(q.items, it)
	q.size += len(line) + 1
	var err error
	if rewrite {
		err = q.rewrite()
	} else {
		err = q.appendLine(line, len(q.items) == 1)
	}
	if err != nil {
		q.logf("mqtt: cannot queue an event on disk (kept in memory): %v", err)
	}
}

// makeRoom drops the first victim, counting it, to leave room for the
// report of what was dropped.
func (q *eventQueue) makeRoom() {
	i := q.victim()
	if v := q.items[i].typ; rank(v) >= rank(EventRefused) && v != EventDropped {
		q.drop(v)
	}
	q.size -= len(q.items[i].line) + 1
	q.items = append(q.items[:i], q.items[i+1:]...)
	if err := q.rewrite(); err != nil {
		q.logf("mqtt: %v", err)
	}
}

// victim is the index of the queued event to drop first: the oldest of
// the lowest rank. The queue must not be empty.
func (q *eventQueue) victim() int {
	best := 0
	for i, it := range q.items {
		if rank(it.typ) < rank(q.items[best].typ) {
			best = i
		}
	}
	return best
}

// flush sends events in order until send fails; it returns how many went.
func (q *eventQueue) flush(send func([]byte) bool) int {
	n := 0
	for n < len(q.items) && send(q.items[n].line) {
		n++
	}
	if n == 0 {
		return 0
	}
	for _, it := range q.items[:n] {
		q.size -= len(it.line) + 1
	}
	q.items = append(q.items[:0:0], q.items[n:]...)
	if err := q.rewrite(); err != nil {
		q.logf("mqtt: %v", err)
	}
	return n
}

func (q *eventQueue) appendLine(line []byte, created bool) error {
	f, err := os.OpenFile(q.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line[:len(line):len(line)], '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && created {
		err = atomicfile.SyncDir(filepath.Dir(q.path))
	}
	return err
}

// rewrite replaces the file with the queue's content, or removes it.
func (q *eventQueue) rewrite() error {
	if len(q.items) == 0 {
		if err := os.Remove(q.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot empty the event queue: %w", err)
		}
		return atomicfile.SyncDir(filepath.Dir(q.path))
	}
	var buf bytes.Buffer
	for _, it := range q.items {
		buf.Write(it.line)
		buf.WriteByte('\n')
	}
	return atomicfile.WriteFile(q.path, buf.Bytes(), 0o600)
}
