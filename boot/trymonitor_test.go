package boot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTry runs a tryMonitor on a fake clock: each tick moves it by the
// interval, so that the test runs in milliseconds.
type fakeTry struct {
	mu        sync.Mutex
	clock     time.Time
	pets      int
	disarmed  bool
	committed bool
	probeErr  error
	notes     []string
	rebooted  bool
}

func (f *fakeTry) monitor(ready chan struct{}) *tryMonitor {
	return &tryMonitor{
		con: newConsole(&syncBuffer{}), slot: "b", ready: ready,
		pet: func() error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.pets++
			f.clock = f.clock.Add(5 * time.Second) // a pet per interval
			return nil
		},
		disarm:    func() { f.mu.Lock(); f.disarmed = true; f.mu.Unlock() },
		committed: func() (bool, error) { f.mu.Lock(); defer f.mu.Unlock(); return f.committed, nil },
		probe:     func(context.Context) error { f.mu.Lock(); defer f.mu.Unlock(); return f.probeErr },
		note:      func(why string) { f.mu.Lock(); f.notes = append(f.notes, why); f.mu.Unlock() },
		reboot:    func() { f.mu.Lock(); f.rebooted = true; f.mu.Unlock() },
		tryWait:   60 * time.Second,
		hangAfter: 30 * time.Second,
		interval:  time.Millisecond,
		now:       func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.clock },
	}
}

func TestTryMonitor(t *testing.T) {
	t.Run("agent never ready: reboots after the try wait, watchdog armed", func(t *testing.T) {
		f := &fakeTry{}
		f.monitor(make(chan struct{})).run(context.Background())
		if !f.rebooted || f.disarmed || len(f.notes) != 1 || !strings.Contains(f.notes[0], "not ready within 1m0s") {
			t.Errorf("got rebooted %v disarmed %v notes %q, want a reboot noting the wait", f.rebooted, f.disarmed, f.notes)
		}
		if f.pets < 10 || f.pets > 14 {
			t.Errorf("got %d pets, want the watchdog petted while the agent may still come up (about 12)", f.pets)
		}
	})
	t.Run("agent stops answering: reboots", func(t *testing.T) {
		f := &fakeTry{probeErr: errors.New("connection refused")}
		ready := make(chan struct{})
		close(ready)
		f.monitor(ready).run(context.Background())
		if !f.rebooted || len(f.notes) != 2 || !strings.Contains(f.notes[1], "stopped answering") {
			t.Errorf("got rebooted %v notes %q, want ready then the hang noted", f.rebooted, f.notes)
		}
	})
	t.Run("committed: disarms", func(t *testing.T) {
		f := &fakeTry{}
		ready := make(chan struct{})
		close(ready)
		m := f.monitor(ready)
		done := make(chan struct{})
		go func() { m.run(context.Background()); close(done) }()
		time.Sleep(20 * time.Millisecond)
		f.mu.Lock()
		f.committed = true
		f.mu.Unlock()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the monitor did not end after the commit")
		}
		if !f.disarmed || f.rebooted {
			t.Errorf("got disarmed %v rebooted %v, want the watchdog stopped and no reboot", f.disarmed, f.rebooted)
		}
	})
}

func TestSetNote(t *testing.T) {
	p := newEnvFile(t, envSize)
	SetTry(p, "b", 2)
	e, _ := Read(p)
	_, next := Choose(e, "")
	Write(p, next)
	if err := setNote(p, "b", "its agent was not ready within 3m0s"); err != nil {
		t.Fatal(err)
	}
	e, _ = Read(p)
	_, next = Choose(e, "") // second attempt: the note is cleared for it
	Write(p, next)
	setNote(p, "b", "its agent stopped answering")
	e, _ = Read(p)
	_, next = Choose(e, "") // attempts used up
	if want := "not committed after 2 boot(s): its agent stopped answering"; next.Last.Reason != want || next.Bad != "b" {
		t.Errorf("got %+v, want slot b bad: %q", *next, want)
	}
}
