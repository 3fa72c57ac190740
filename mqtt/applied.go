package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
)

// Bounds of the applied-commands record. A command is remembered until
// appliedGrace past its expiry: Verify refuses it from its expiry on, and
// the grace covers a device clock set back. At most maxApplied commands
// are remembered: when that many are still inside their window, a new
// command is refused until the first of them expires. Forgetting one
// instead would let the broker, which is not trusted, replay it.
const (
	appliedGrace = 24 * time.Hour
	maxApplied   = 10000
	// compactSlack lets the journal grow this many lines past twice the
	// records before it is rewritten.
	compactSlack = 256
)

// syncApplied makes an appended record durable; a test that floods the
// record with thousands of commands swaps it (durability is tested apart).
var syncApplied = (*os.File).Sync

// appliedRecord is what the device remembers of a command it accepted.
type appliedRecord struct {
	// ID names the command in the journal's lines.
	ID       string    `json:"id,omitempty"`
	Expiry   time.Time `json:"expiry"`
	Recorded time.Time `json:"recorded"`
	// Final is the command's final event; nil while it is being applied.
	Final *Event `json:"final,omitempty"`
	// Action and App say what the command was for, so that one found in
	// progress at a start waits for its turn again as it did (schedule.go).
	Action string `json:"action,omitempty"`
	App    string `json:"app,omitempty"`
	// Change is the change of the agent that the command started: its
	// outcome is the command's answer, also after a restart.
	Change string `json:"change,omitempty"`
}

// appliedLog is the persisted record of applied commands: a journal of
// JSON lines (applied.log), one appended and synced per change, the last
// line of an id winning, rewritten once it holds twice the records. A
// record costs one small write, not a rewrite of all of them.
type appliedLog struct {
	mu    sync.Mutex
	path  string
	logf  func(string, ...any)
	m     map[string]*appliedRecord
	lines int // lines in the file
}

// legacyApplied is the record as one JSON object, before the journal.
type legacyApplied struct {
	Commands map[string]*appliedRecord `json:"commands"`
}

// loadApplied reads the record kept in dir, taking over an applied.json
// from an older agent.
func loadApplied(dir string, logf func(string, ...any)) (*appliedLog, error) {
	a := &appliedLog{path: filepath.Join(dir, "applied.log"), logf: logf, m: map[string]*appliedRecord{}}
	legacy := filepath.Join(dir, "applied.json")
	b, err := os.ReadFile(legacy)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		legacy = ""
	case err != nil:
		return nil, fmt.Errorf("cannot read the applied commands: %w", err)
	default:
		var f legacyApplied
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("cannot read the applied commands from %s: %w", legacy, err)
		}
		for id, r := range f.Commands {
			if r != nil {
				a.m[id] = r
			}
		}
	}
	if err := a.readJournal(); err != nil {
		return nil, err
	}
	a.prune(timeNow())
	if legacy != "" {
		if err := a.compact(); err != nil {
			return nil, err
		}
		if err := os.Remove(legacy); err != nil {
			return nil, fmt.Errorf("cannot remove the old record of applied commands: %w", err)
		}
	}
	return a, nil
}

// readJournal replays the journal's lines. A line torn by a power cut is
// the last one, written before its command was acknowledged: the broker
// delivers that command again.
func (a *appliedLog) readJournal() error {
	b, err := os.ReadFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the applied commands: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		a.lines++
		var r appliedRecord
		if err := json.Unmarshal(line, &r); err != nil || r.ID == "" {
			a.logf("mqtt: dropping a damaged line of %s (%d bytes)", a.path, len(line))
			continue
		}
		id := r.ID
		r.ID = ""
		a.m[id] = &r
	}
	return nil
}

func (a *appliedLog) get(id string) *appliedRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[id]
}

// admit records the command id as being applied, from now on. It returns
// the record of a command seen before instead (to answer it again), or an
// error when the command may not be recorded: it has no expiry, or the
// record is full of commands still inside their window.
func (a *appliedLog) admit(id string, expiry, now time.Time) (*appliedRecord, error) {
	return a.admitCommand(&Command{ID: id, Expiry: expiry}, now)
}

// admitCommand is admit, recording what the command is for.
func (a *appliedLog) admitCommand(cmd *Command, now time.Time) (*appliedRecord, error) {
	id, expiry := cmd.ID, cmd.Expiry
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.m[id]; r != nil {
		return r, nil
	}
	if expiry.IsZero() {
		return nil, fmt.Errorf("cannot accept command %s: it has no expiry, which replay protection needs", id)
	}
	if len(a.m) >= maxApplied {
		a.prune(now)
	}
	if len(a.m) >= maxApplied {
		return nil, fmt.Errorf("cannot accept command %s: the device already remembers %d commands still inside their time window, "+
			"so that none can be replayed; %s (send it again then, or send fewer commands with shorter expiries)", id, maxApplied, a.nextFree())
	}
	return nil, a.putLocked(id, &appliedRecord{Expiry: expiry, Recorded: now.UTC(), Action: cmd.Action, App: cmd.App})
}

// setChange records the change that the command id started.
func (a *appliedLog) setChange(id, change string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.m[id]
	if r == nil || r.Final != nil {
		return fmt.Errorf("internal error: command %s is not in progress", id)
	}
	if r.Change == change {
		return nil
	}
	c := *r
	c.Change = change
	return a.putLocked(id, &c)
}

// end records the final event of the command id, keeping what else its
// record says.
func (a *appliedLog) end(id string, expiry time.Time, final *Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := appliedRecord{Expiry: expiry}
	if old := a.m[id]; old != nil {
		r = *old
	}
	r.Recorded, r.Final = timeNow().UTC(), final
	return a.putLocked(id, &r)
}

// nextFree says when the full record frees a place.
func (a *appliedLog) nextFree() string {
	var first time.Time
	for _, r := range a.m {
		if r.Final != nil && (first.IsZero() || r.Expiry.Before(first)) {
			first = r.Expiry
		}
	}
	if first.IsZero() {
		return "the first place frees when the commands in progress end"
	}
	return "the first place frees at " + first.Add(appliedGrace).UTC().Format(time.RFC3339)
}

// put records r for id.
func (a *appliedLog) put(id string, r *appliedRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.putLocked(id, r)
}

// putLocked appends the record to the journal and syncs it, rewriting the
// journal when it holds twice the records. a.mu must be held.
func (a *appliedLog) putLocked(id string, r *appliedRecord) error {
	a.m[id] = r
	if a.lines >= 2*len(a.m)+compactSlack {
		a.prune(timeNow())
		return a.compact()
	}
	line, err := json.Marshal(r.withID(id))
	if err != nil {
		return fmt.Errorf("internal error: cannot encode an applied command: %w", err)
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot record command %s: %w", id, err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = syncApplied(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && a.lines == 0 {
		err = atomicfile.SyncDir(filepath.Dir(a.path))
	}
	if err != nil {
		return fmt.Errorf("cannot record command %s: %w", id, err)
	}
	a.lines++
	return nil
}

// withID returns r as a line of the journal.
func (r *appliedRecord) withID(id string) appliedRecord {
	c := *r
	c.ID = id
	return c
}

// compact rewrites the journal with one line per record, in id order.
func (a *appliedLog) compact() error {
	ids := make([]string, 0, len(a.m))
	for id := range a.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var buf bytes.Buffer
	for _, id := range ids {
		r := a.m[id]
		line, err := json.Marshal(r.withID(id))
		if err != nil {
			return fmt.Errorf("internal error: cannot encode an applied command: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if err := atomicfile.WriteFile(a.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("cannot record the applied commands: %w", err)
	}
	a.lines = len(ids)
	return nil
}

// prune forgets the commands whose expiry is more than appliedGrace past,
// once answered: Verify refuses them anyway. It never forgets a command
// still inside its window, whatever the count.
func (a *appliedLog) prune(now time.Time) {
	for id, r := range a.m {
		if r.Final != nil && !r.Expiry.IsZero() && now.Sub(r.Expiry) > appliedGrace {
			delete(a.m, id)
		}
	}
}

// interrupted lists the commands recorded as being applied, in id order.
func (a *appliedLog) interrupted() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for id, r := range a.m {
		if r.Final == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
