package mqtt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// setNow fixes timeNow for the test.
func setNow(t *testing.T, now *time.Time) {
	testutil.Replace(t, &timeNow, func() time.Time { return *now })
}

func TestAppliedPrune(t *testing.T) {
	now := time.Now()
	setNow(t, &now)
	dir := t.TempDir()
	a, _ := loadApplied(dir, t.Logf)
	done := &Event{Type: EventDone}
	a.put("old", &appliedRecord{Expiry: now.Add(-25 * time.Hour), Final: done})
	a.put("recent", &appliedRecord{Expiry: now.Add(-23 * time.Hour), Final: done})
	a.put("running", &appliedRecord{Expiry: now.Add(-48 * time.Hour)})
	again, err := loadApplied(dir, t.Logf)
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

// admitDone admits id and records it answered, as the link does.
func admitDone(t *testing.T, a *appliedLog, id string, expiry, now time.Time) error {
	t.Helper()
	rec, err := a.admit(id, expiry, now)
	if rec != nil {
		t.Fatalf("admit %s: got the record of a command seen before, want a new one", id)
	}
	if err != nil {
		return err
	}
	if err := a.put(id, &appliedRecord{Expiry: expiry, Recorded: now, Final: &Event{Command: id, Type: EventDone}}); err != nil {
		t.Fatal(err)
	}
	return nil
}

// Regression: past 10,000 records, pruning dropped the oldest ones even
// when their commands were still inside their time window, so a broker
// delivering such a command again had it applied a second time. Now only
// commands past their expiry (and the grace) are forgotten, and while the
// record is full of commands still in their window, new ones are refused.
// Before the fix, the replays of c05000.. below were admitted as new.
func TestAppliedFloodNeverForgetsUnexpired(t *testing.T) {
	replaceSync(t) // 25,000 records; durability is TestAppliedJournal's
	t0 := time.Now().UTC().Truncate(time.Second)
	now := t0
	setNow(t, &now)
	dir := t.TempDir()
	a, _ := loadApplied(dir, t.Logf)
	// 5,000 commands for an hour, then, 26 hours later, 10,050 more, one a
	// second, all valid for 4 hours.
	for i := range 5000 {
		if err := admitDone(t, a, fmt.Sprintf("c%05d", i), t0.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(26 * time.Hour)
	expiry := now.Add(4 * time.Hour)
	var refused []error
	for i := 5000; i < 15050; i++ {
		now = now.Add(time.Second)
		if err := admitDone(t, a, fmt.Sprintf("c%05d", i), expiry, now); err != nil {
			refused = append(refused, err)
		}
	}
	if len(refused) != 50 {
		t.Errorf("got %d of the 10,050 refused, want 50 (the record holds 10,000 inside their window)", len(refused))
	} else if msg := refused[0].Error(); !strings.Contains(msg, "10000 commands still inside their time window") ||
		!strings.Contains(msg, "frees at "+expiry.Add(appliedGrace).Format(time.RFC3339)) {
		t.Errorf("got %q, want the reason and when a place frees", msg)
	} else {
		t.Log(msg)
	}
	// Replays of the early commands still inside their window: answered
	// from the record, in memory and after a restart.
	again, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, log := range []*appliedLog{a, again} {
		for _, i := range []int{5000, 5001, 5049, 9999, 14999} {
			id := fmt.Sprintf("c%05d", i)
			if rec, err := log.admit(id, expiry, now); rec == nil || rec.Final == nil || err != nil {
				t.Errorf("replay of %s: got %+v, %v, want its recorded answer", id, rec, err)
			}
		}
	}
	if n := len(again.m); n != maxApplied {
		t.Errorf("got %d records after a restart, want %d", n, maxApplied)
	}
	if fi, err := os.Stat(filepath.Join(dir, "applied.log")); err != nil || again.lines > 2*maxApplied+compactSlack {
		t.Errorf("got a journal of %d lines (%v, %v), want at most %d", again.lines, fi.Size(), err, 2*maxApplied+compactSlack)
	}
	// Once the window and the grace have passed, places free again.
	now = expiry.Add(appliedGrace + time.Second)
	if err := admitDone(t, a, "late", now.Add(time.Hour), now); err != nil {
		t.Errorf("after the expiries: got %v, want the command accepted", err)
	}
	if len(a.m) != 1 {
		t.Errorf("got %d records after the expiries, want 1", len(a.m))
	}
}

func replaceSync(t *testing.T) {
	testutil.Replace(t, &syncApplied, func(*os.File) error { return nil })
}

// The journal survives a restart, a torn last line, and is rewritten
// before it grows past twice its records; an older agent's applied.json
// is taken over.
func TestAppliedJournal(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	legacy := fmt.Sprintf(`{"commands":{"old1":{"expiry":%q,"recorded":%q,"final":{"command":"old1","type":"done"}}}}`,
		now.Add(time.Hour).Format(time.RFC3339), now.Format(time.RFC3339))
	os.WriteFile(filepath.Join(dir, "applied.json"), []byte(legacy), 0o600)
	a, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "applied.json")); !os.IsNotExist(err) {
		t.Errorf("got applied.json kept (%v), want it taken over", err)
	}
	if r := a.get("old1"); r == nil || r.Final == nil {
		t.Fatalf("got %+v for old1, want the legacy record", r)
	}
	if rec, err := a.admit("c1", now.Add(time.Hour), now); rec != nil || err != nil {
		t.Fatalf("admit c1: got %+v, %v", rec, err)
	}
	// A power cut while appending the next record tears its line.
	f, _ := os.OpenFile(filepath.Join(dir, "applied.log"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":"c2","expi`)
	f.Close()
	b, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if b.get("old1") == nil || b.get("c1") == nil || b.get("c2") != nil || strings.Join(b.interrupted(), ",") != "c1" {
		t.Errorf("got records %v, want old1 and c1 (in progress), not the torn c2", b.m)
	}
	// Rewrites of one record do not grow the journal past its bound.
	for i := range 3 * compactSlack {
		if err := b.put("c1", &appliedRecord{Expiry: now.Add(time.Hour), Recorded: now, Final: &Event{Seq: uint64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := loadApplied(dir, t.Logf)
	if c.lines > 2*len(c.m)+compactSlack || c.get("c1").Final.Seq != 3*compactSlack-1 {
		t.Errorf("got %d lines for %d records, last seq %d; want at most %d lines and the last write", c.lines, len(c.m), c.get("c1").Final.Seq, 2*len(c.m)+compactSlack)
	}
}

func TestAppliedNoExpiry(t *testing.T) {
	a, _ := loadApplied(t.TempDir(), t.Logf)
	if _, err := a.admit("c1", time.Time{}, time.Now()); err == nil || !strings.Contains(err.Error(), "no expiry") {
		t.Errorf("got %v, want a refusal for the missing expiry", err)
	}
}

func FuzzLoadApplied(f *testing.F) {
	f.Add([]byte(`{"id":"c1","expiry":"2030-01-01T00:00:00Z","recorded":"2029-12-31T23:00:00Z","final":{"command":"c1","type":"done"}}` + "\n"))
	f.Add([]byte("{\"id\":\"\"}\n{\n\n{\"id\":\"c2\",\"expiry\":\"x\"}\n{\"id\":\"c3\"}"))
	// A command in progress with its change, and the same command answered.
	f.Add([]byte(`{"id":"c4","expiry":"2030-01-01T00:00:00Z","recorded":"2029-12-31T23:00:00Z","action":"install","app":"hello"}` + "\n" +
		`{"id":"c4","expiry":"2030-01-01T00:00:00Z","recorded":"2029-12-31T23:00:00Z","action":"install","app":"hello","change":"7"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "applied.log"), data, 0o600)
		a, err := loadApplied(dir, func(string, ...any) {})
		if err != nil {
			return
		}
		now := time.Now()
		if _, seen := a.m["fuzz-new"]; seen || len(a.m) >= maxApplied {
			return
		}
		if rec, err := a.admit("fuzz-new", now.Add(time.Hour), now); rec != nil || err != nil {
			t.Fatalf("admit of a new id after loading: got %+v, %v", rec, err)
		}
		for id := range a.m {
			if a.get(id) == nil {
				t.Fatalf("record %q lost", id)
			}
		}
	})
}

// The journal keeps what a command is for and the change it started,
// across a reload and once it is answered, so that a start can take the
// command up again and an answered one says which change it was.
func TestAppliedKeepsChange(t *testing.T) {
	dir := t.TempDir()
	a, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cmd := &Command{ID: "c1", Expiry: now.Add(time.Hour), Action: ActionInstall, App: "hello"}
	if rec, err := a.admitCommand(cmd, now); rec != nil || err != nil {
		t.Fatalf("admit: got %+v, %v", rec, err)
	}
	if err := a.setChange("c1", "7"); err != nil {
		t.Fatal(err)
	}
	b, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.get("c1"); r == nil || r.Change != "7" || r.Action != ActionInstall || r.App != "hello" || r.Final != nil {
		t.Fatalf("after a reload: got %+v, want install of hello in progress with change 7", r)
	}
	if err := b.end("c1", cmd.Expiry, &Event{Command: "c1", Type: EventDone}); err != nil {
		t.Fatal(err)
	}
	if err := b.setChange("c1", "8"); err == nil {
		t.Error("setChange of an answered command: got nil, want an error")
	}
	c, err := loadApplied(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.get("c1"); r == nil || r.Change != "7" || r.Final == nil || r.Final.Type != EventDone || len(c.interrupted()) != 0 {
		t.Errorf("answered: got %+v, want done with change 7, nothing interrupted", r)
	}
}
