package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// progressEvery rate-limits progress events (about 4 a second).
const progressEvery = 250 * time.Millisecond

// msgNotStarted is the failure of a command still waiting for its turn
// when the link closed: nothing of it happened.
const msgNotStarted = "not started: the agent stopped before its turn came, and nothing was done (send it again)"

// msgInterrupted is the failure of a command that was being applied when
// the agent stopped. It is not applied again blindly, since it may have
// half happened: the operator sees the failure and may send a new
// command (with a new id) once the device's state says what to do.
const msgInterrupted = "interrupted by a restart"

// onMessage takes a message from paho's router. It must not block: the
// message is queued for the dispatcher, which checks and records commands
// one at a time in arrival order and hands them to the scheduler. The
// dispatcher runs only while there is work, so that an idle link costs no
// goroutine.
func (l *Link) onMessage(_ paho.Client, m paho.Message) {
	if !l.isCommandTopic(m.Topic()) {
		m.Ack()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return // not acknowledged: the broker delivers it again
	}
	l.pending = append(l.pending, m)
	if !l.working {
		l.working = true
		l.wg.Add(1)
		go l.work()
	}
}

func (l *Link) isCommandTopic(topic string) bool {
	if topic == CmdTopic(l.cfg.DeviceID) {
		return true
	}
	for _, g := range l.cfg.Groups {
		if topic == GroupTopic(g) {
			return true
		}
	}
	return false
}

func (l *Link) work() {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		if len(l.pending) == 0 || l.closed {
			l.pending, l.working = nil, false
			l.mu.Unlock()
			return
		}
		m := l.pending[0]
		l.pending[0] = nil
		l.pending = l.pending[1:]
		l.mu.Unlock()
		l.admit(m)
	}
}

// admit answers one command message: refused or replayed at once, or
// recorded, acknowledged and handed to the scheduler.
func (l *Link) admit(m paho.Message) {
	cmd, err := l.dev.Verify(m.Payload())
	if err != nil {
		id := "unknown"
		if cmd != nil && cmd.ID != "" {
			id = cmd.ID
		}
		l.emit(Event{Command: id, Type: EventRefused, Message: err.Error()}, nil)
		m.Ack()
		return
	}
	// Recorded before anything happens, so that a crash during Apply is
	// never followed by a blind second Apply.
	rec, err := l.applied.admitCommand(cmd, timeNow())
	switch {
	case rec != nil:
		l.replay(cmd, rec)
		m.Ack()
		return
	case err != nil:
		l.emit(Event{Command: cmd.ID, Type: EventRefused, Message: err.Error()}, nil)
		m.Ack()
		return
	}
	m.Ack()
	l.emit(Event{Command: cmd.ID, Type: EventAccepted}, nil)
	l.schedule(cmd)
}

// run applies a command, or waits for the change of one resumed after a
// restart, and answers it.
func (l *Link) run(cmd *Command) {
	cmd.started = func(change string) error { return l.applied.setChange(cmd.ID, change) }
	result, err := l.apply(cmd)
	if err != nil && l.ctx.Err() != nil {
		return // stopped by Close: the next Start resumes it
	}
	final := Event{Command: cmd.ID, Type: EventDone, Result: result}
	switch {
	case cmd.resumed && errors.Is(err, ErrNoChange):
		final = Event{Command: cmd.ID, Type: EventFailed, Message: msgInterrupted}
	case err != nil:
		final = Event{Command: cmd.ID, Type: EventFailed, Message: err.Error()}
	}
	// The state goes out before the final event, so that an operator who
	// sees "done" reads the retained state that the command left.
	l.publishState()
	l.finish(cmd.ID, cmd.Expiry, final)
}

// replay answers a command delivered again with its recorded final event,
// or, while it is still waiting or running, with "accepted" again: its
// final event follows once. (Start took up the commands cut short by a
// stop again, so a record without an end is one of this run's.)
func (l *Link) replay(cmd *Command, rec *appliedRecord) {
	ev := Event{Command: cmd.ID, Type: EventAccepted}
	if rec.Final != nil {
		ev = *rec.Final
	}
	ev.Replayed = true
	l.emit(ev, nil)
}

// finish records a final event, then publishes it.
func (l *Link) finish(id string, expiry time.Time, final Event) {
	l.emit(final, func(ev Event) {
		if err := l.applied.end(id, expiry, &ev); err != nil {
			l.logf("mqtt: cannot record the end of command %s: %v", id, err)
		}
	})
}

// apply runs Device.Apply with a rate-limited progress callback; a panic
// in Apply fails the command instead of the agent.
func (l *Link) apply(cmd *Command) (result json.RawMessage, err error) {
	var (
		mu   sync.Mutex
		last time.Time
		over bool
	)
	progress := func(step string, percent int) {
		mu.Lock()
		now := time.Now()
		if over || (!last.IsZero() && now.Sub(last) < progressEvery) {
			mu.Unlock()
			return
		}
		last = now
		mu.Unlock()
		l.emit(Event{Command: cmd.ID, Type: EventProgress, Step: step, Percent: percent}, nil)
	}
	defer func() {
		mu.Lock()
		over = true
		mu.Unlock()
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("internal error: %s panicked: %v", cmd.Action, r)
		}
	}()
	if cmd.resumed {
		return l.dev.Resume(l.ctx, cmd, cmd.change, progress)
	}
	return l.dev.Apply(l.ctx, cmd, progress)
}

// recoverInterrupted takes up the commands that were being applied when
// the agent last stopped. Each waits for its turn as it did, then for the
// change it had started, and is answered with that change's outcome; one
// that started no change is answered failed, interrupted by a restart.
func (l *Link) recoverInterrupted() {
	for _, id := range l.applied.interrupted() {
		rec := l.applied.get(id)
		l.logf("mqtt: command %s was interrupted by a restart: answering it with the outcome of its change, if it started one", id)
		l.schedule(&Command{ID: id, Action: rec.Action, App: rec.App, Expiry: rec.Expiry, resumed: true, change: rec.Change})
	}
}
