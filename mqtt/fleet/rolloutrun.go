package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
)

var (
	// progressTick is how often a running rollout shows its progress,
	// checks health deadlines and the abort marker.
	progressTick = 500 * time.Millisecond
	// saveInterval bounds how often answers are written to disk while a
	// wave runs; a wave's end is always written.
	saveInterval = 2 * time.Second
	// maxFailureLines bounds the failures a wave prints one by one.
	maxFailureLines = 10
	// resendAfter is how long a device may leave its command unanswered
	// (not even accepted) before it is published again. A broker that
	// crashed loses what it had queued; the device applies a command id
	// once and answers a repeat with its recorded result, so sending
	// again is safe.
	resendAfter = 15 * time.Second
)

// runner runs a rollout over one MQTT session. Its state is owned by the
// goroutine of run: the MQTT handlers only decode messages into msgs.
type runner struct {
	st             *rolloutState
	path           string
	l              *link
	op             *operator // loaded when a command must be signed
	stdout, stderr io.Writer
	msgs           chan inbound

	byCmd    map[string]int         // command ID → device index
	byDev    map[string]int         // device ID → index
	accepted map[int]time.Time      // when the device accepted, by its clock
	health   map[int]healthWait     // done, awaiting a healthy state
	states   map[string]*mqtt.State // latest states, with --wait-healthy or --soak
	pending  int                    // devices of the wave without a result
	sentAt   map[int]time.Time      // when each command of the wave was last published
	resend   chan error             // the outcome of a re-send in flight, nil when none

	dirty     bool
	lastSave  time.Time
	shown     string
	failLines int
}

// healthWait is a device that is done and must report health ok
// (--wait-healthy), or stay healthy until the end of its soak (--soak).
type healthWait struct {
	since    time.Time // a state older than this (device clock) predates the command
	done     time.Time // when the device was done (device clock)
	deadline time.Time // the wait's or the soak's end (local clock)
	soak     bool
	// healthy: with soak, the latest state since the command says healthy.
	healthy bool
	last    *mqtt.State // with soak, that latest state
}

func newRunner(st *rolloutState, path string, l *link, stdout, stderr io.Writer) *runner {
	r := &runner{
		st: st, path: path, l: l, stdout: stdout, stderr: stderr,
		msgs:  make(chan inbound, 4096),
		byCmd: map[string]int{}, byDev: make(map[string]int, len(st.Devices)),
		accepted: map[int]time.Time{}, health: map[int]healthWait{}, states: map[string]*mqtt.State{},
		sentAt: map[int]time.Time{},
	}
	for i, d := range st.Devices {
		r.byDev[d.ID] = i
	}
	return r
}

// run runs the waves from the current one.
func (r *runner) run(ctx context.Context) error {
	if err := r.l.subscribe(allEvents, r.l.eventHandler(r.msgs)); err != nil {
		return err
	}
	if r.watchesHealth() {
		if err := r.l.subscribe(allStates, r.l.stateHandler(r.msgs)); err != nil {
			return err
		}
	}
	for r.st.Wave < len(r.st.Waves) {
		if err := r.checkAbort(); err != nil {
			return err
		}
		if err := r.wave(ctx); err != nil {
			return err
		}
		if reason := r.st.overLimits(); reason != "" {
			r.st.State, r.st.Reason = rolloutStopped, reason
			return r.save()
		}
		r.st.Wave++
		if err := r.save(); err != nil {
			return err
		}
	}
	r.st.State = rolloutDone
	return r.save()
}

// finish reports how the rollout ended.
func (r *runner) finish(err error, asJSON bool) error {
	st := r.st
	switch {
	case errors.Is(err, errInterrupted):
		r.save()
		return fmt.Errorf("rollout %s interrupted in wave %d/%d (resume it with 'paddock fleet rollout resume %s')", st.ID, st.Wave+1, len(st.Waves), st.ID)
	case errors.Is(err, errAborted):
		return fmt.Errorf("rollout %s was aborted in wave %d/%d", st.ID, st.Wave+1, len(st.Waves))
	case err != nil && st.State == rolloutRunning:
		r.save()
		return fmt.Errorf("rollout %s: %w (resume it with 'paddock fleet rollout resume %s')", st.ID, err, st.ID)
	case err != nil:
		return err
	}
	if asJSON {
		if err := writeStatus(r.stdout, st, true); err != nil {
			return err
		}
	}
	c := st.counts(st.Devices)
	switch st.State {
	case rolloutStopped:
		return fmt.Errorf("rollout %s stopped after wave %d/%d: %s", st.ID, st.Wave+1, len(st.Waves), st.Reason)
	}
	if !asJSON {
		fmt.Fprintf(r.stdout, "rollout %s done: %d devices, %d done, %d failed\n", st.ID, len(st.Devices), c.Done, c.Failed)
	}
	return nil
}

func (r *runner) save() error {
	if err := r.st.save(r.path); err != nil {
		return err
	}
	r.dirty, r.lastSave = false, time.Now()
	return nil
}

// checkAbort stops the rollout when 'rollout abort' left its marker.
func (r *runner) checkAbort() error {
	if _, err := os.Stat(abortPath(r.path)); err != nil {
		return nil
	}
	r.st.State, r.st.Reason = rolloutAborted, "aborted by the operator"
	if err := r.save(); err != nil {
		return err
	}
	return errAborted
}

// wave sends the command to the devices of the current wave that have no
// result and waits for their answers.
func (r *runner) wave(ctx context.Context) error {
	devs := r.st.Devices[:r.st.Waves[r.st.Wave].Count]
	var unsigned []int
	for i := range devs {
		if devs[i].Command == "" {
			unsigned = append(unsigned, i)
		}
	}
	if len(unsigned) > 0 {
		if err := r.signAll(unsigned); err != nil {
			return err
		}
		// The commands are on disk before they are on the wire.
		if err := r.save(); err != nil {
			return err
		}
	}
	var out []outgoing
	r.pending = 0
	now := time.Now()
	for i, d := range devs {
		if d.Result == "" {
			r.byCmd[d.Command] = i
			out = append(out, outgoing{device: d.ID, assertion: d.Assertion})
			r.sentAt[i] = now
			r.pending++
		}
	}
	r.progress(true)
	pubErr := make(chan error, 1)
	go func() { pubErr <- r.publishAll(ctx, out) }()
	err := r.await(ctx, len(devs), pubErr)
	r.progress(true)
	return err
}

// outgoing is a command to publish.
type outgoing struct{ device, assertion string }

// publishAll publishes the commands, many awaiting their PUBACK at once.
func (r *runner) publishAll(ctx context.Context, out []outgoing) error {
	w := newWindow(r.l, publishWindow)
	for _, o := range out {
		if ctx.Err() != nil {
			break
		}
		if err := w.publish(mqtt.CmdTopic(o.device), bundle([]byte(r.st.Delegation), []byte(o.assertion))); err != nil {
			break
		}
	}
	return w.wait()
}

// signAll signs a command for each device of idxs, on every CPU.
func (r *runner) signAll(idxs []int) error {
	if r.op == nil {
		op, err := loadOperator(r.st.Key, []byte(r.st.Delegation), "of rollout "+r.st.ID)
		if err != nil {
			return err
		}
		r.op = op
	}
	type signed struct {
		id, text string
		err      error
	}
	res := make([]signed, len(idxs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(idxs); i = int(next.Add(1)) - 1 {
				a, err := r.op.sign(rolloutTarget(r.st.Devices[idxs[i]].ID), r.st.Action, r.st.Args, time.Duration(r.st.Expires))
				if err != nil {
					res[i].err = err
					continue
				}
				res[i] = signed{id: a.Header("id"), text: string(a.Encode())}
			}
		})
	}
	wg.Wait()
	now := timeNow().UTC()
	for i, idx := range idxs {
		if res[i].err != nil {
			return res[i].err
		}
		d := &r.st.Devices[idx]
		d.Command, d.Assertion, d.Sent = res[i].id, res[i].text, now
	}
	return nil
}

// await handles the answers until every device of the wave (the first n)
// has a result or the wave times out.
func (r *runner) await(ctx context.Context, n int, pubErr <-chan error) error {
	timeout := time.NewTimer(time.Duration(r.st.Timeout))
	defer timeout.Stop()
	tick := time.NewTicker(progressTick)
	defer tick.Stop()
	for r.pending > 0 || pubErr != nil {
		select {
		case m := <-r.msgs:
			r.handle(m)
		case err := <-pubErr:
			if err != nil {
				return err
			}
			pubErr = nil
		case <-tick.C:
			if err := r.tick(); err != nil {
				return err
			}
		case <-timeout.C:
			r.timeout(n)
		case <-ctx.Done():
			return errInterrupted
		}
	}
	return nil
}

// handle takes one event or state of a device.
func (r *runner) handle(m inbound) {
	if m.state != nil {
		r.states[m.device] = m.state
		if idx, ok := r.byDev[m.device]; ok {
			r.checkHealth(idx)
		}
		return
	}
	ev := m.event
	if idx, ok := r.byDev[m.device]; ok && ev.Type == mqtt.EventDropped && r.st.Devices[idx].Command != "" && r.st.Devices[idx].Result == "" {
		warnDropped(r.stderr, m.device, ev) // the command is sent again if it goes unanswered
		return
	}
	idx, ok := r.byCmd[ev.Command]
	if !ok || r.st.Devices[idx].ID != m.device || r.st.Devices[idx].Result != "" {
		return
	}
	switch ev.Type {
	case mqtt.EventAccepted:
		r.accepted[idx] = ev.Time
	case mqtt.EventDone:
		r.st.Devices[idx].Unconnected = unconnectedPlugs(ev.Result)
		if !r.watchesHealth() {
			r.setResult(idx, mqtt.EventDone, "")
			return
		}
		since, ok := r.accepted[idx]
		if !ok || ev.Replayed {
			since = ev.Time
		}
		hw := healthWait{since: since, done: ev.Time, deadline: time.Now().Add(time.Duration(r.st.WaitHealthy))}
		if r.st.Soak > 0 {
			hw.soak, hw.deadline = true, time.Now().Add(time.Duration(r.st.Soak))
		}
		r.health[idx] = hw
		r.checkHealth(idx)
	case mqtt.EventFailed, mqtt.EventRefused:
		result, msg := resultOf(ev)
		r.setResult(idx, result, msg)
	}
}

// watchesHealth reports whether done devices are held until their
// health says so (--wait-healthy or --soak).
func (r *runner) watchesHealth() bool { return r.st.WaitHealthy > 0 || r.st.Soak > 0 }

// The health a device's state reports: "ok" (or "okay") is healthy,
// "degraded" (or "error") unhealthy; anything else ("waiting", none) is
// not decided yet.
func healthyState(h string) bool   { return h == "ok" || h == "okay" }
func unhealthyState(h string) bool { return h == "degraded" || h == "error" }

// checkHealth judges a done device by its latest state since the command.
// Unhealthy fails it at once, with the device's reasons: waiting longer
// would only hold the wave. Healthy finishes it, or, with --soak, is kept
// until the soak ends (tick). A state from before the device was done
// cannot fail a soak: the refresh was still under way.
func (r *runner) checkHealth(idx int) {
	hw, ok := r.health[idx]
	if !ok {
		return
	}
	st := r.states[r.st.Devices[idx].ID]
	if st == nil || st.Time.Before(hw.since) {
		return
	}
	switch {
	case unhealthyState(st.Health) && hw.soak && st.Time.Before(hw.done):
	case unhealthyState(st.Health):
		when := "after done"
		if hw.soak {
			when = fmt.Sprintf("during the %s soak", time.Duration(r.st.Soak))
		}
		r.setResult(idx, resultUnhealthy, fmt.Sprintf("health %s %s%s", st.Health, when, problems(st)))
		return
	case healthyState(st.Health) && !hw.soak:
		r.setResult(idx, mqtt.EventDone, "")
		return
	}
	if hw.soak {
		hw.healthy, hw.last = healthyState(st.Health), st
		r.health[idx] = hw
	}
}

// problems formats the reasons a state gives, after ": ".
func problems(st *mqtt.State) string {
	if len(st.Problems) == 0 {
		return ""
	}
	return ": " + strings.Join(st.Problems, "; ")
}

// endHealthWait finishes a device whose wait or soak is over: healthy at
// the end of a soak, it is done; otherwise unhealthy.
func (r *runner) endHealthWait(idx int) {
	if hw := r.health[idx]; hw.soak && hw.healthy {
		r.setResult(idx, mqtt.EventDone, "")
		return
	}
	r.setResult(idx, resultUnhealthy, r.healthMessage(idx))
}

func (r *runner) setResult(idx int, result, msg string) {
	d := &r.st.Devices[idx]
	d.Result, d.Message, d.Finished = result, msg, timeNow().UTC()
	d.Assertion = "" // answered: it will not be sent again
	delete(r.sentAt, idx)
	delete(r.health, idx)
	delete(r.accepted, idx)
	r.pending--
	r.dirty = true
	if result == mqtt.EventDone {
		return
	}
	if r.failLines < maxFailureLines {
		fmt.Fprintf(r.stderr, "%s: %s %s\n", cli.Printable(d.ID), cli.Printable(result), cli.Printable(msg))
	} else if r.failLines == maxFailureLines {
		fmt.Fprintf(r.stderr, "(more failures: see 'paddock fleet rollout status %s')\n", r.st.ID)
	}
	r.failLines++
}

// tick fails the devices past their health deadline, shows the progress,
// saves what changed and checks for an abort.
func (r *runner) tick() error {
	now := time.Now()
	r.resendUnanswered(now)
	for idx, hw := range r.health {
		if now.After(hw.deadline) {
			r.endHealthWait(idx)
		}
	}
	r.progress(false)
	if r.dirty && time.Since(r.lastSave) >= saveInterval {
		if err := r.save(); err != nil {
			return err
		}
	}
	return r.checkAbort()
}

// resendUnanswered publishes again the commands of the wave that got no
// answer within resendAfter (or no final answer within four times that),
// one batch at a time.
func (r *runner) resendUnanswered(now time.Time) {
	if r.resend != nil {
		select {
		case <-r.resend:
			r.resend = nil
		default:
			return // the last batch is still going out
		}
	}
	var out []outgoing
	for idx, at := range r.sentAt {
		d := r.st.Devices[idx]
		wait := resendAfter
		if _, ok := r.accepted[idx]; ok {
			// Applying takes time; an answer lost with a crashed broker
			// is asked for again, later.
			wait = 4 * resendAfter
		}
		if d.Result != "" || d.Assertion == "" || now.Sub(at) < wait {
			continue
		}
		out = append(out, outgoing{device: d.ID, assertion: d.Assertion})
		r.sentAt[idx] = now
	}
	if len(out) == 0 {
		return
	}
	fmt.Fprintf(r.stderr, "sending again to %d devices that have not answered\n", len(out))
	r.resend = make(chan error, 1)
	go func(done chan error) { done <- r.publishAll(context.Background(), out) }(r.resend)
}

var errAborted = errors.New("aborted")

func (r *runner) waitsHealth(idx int) bool {
	_, ok := r.health[idx]
	return ok
}

func (r *runner) healthMessage(idx int) string {
	hw := r.health[idx]
	st := r.states[r.st.Devices[idx].ID]
	msg := fmt.Sprintf("no health ok within %s of done", time.Duration(r.st.WaitHealthy))
	if hw.soak {
		msg, st = fmt.Sprintf("not healthy at the end of the %s soak", time.Duration(r.st.Soak)), hw.last
		if st == nil {
			msg += " (no state since the command)"
		}
	}
	if st != nil && st.Health != "" {
		msg += fmt.Sprintf(" (health %s", st.Health)
		for _, p := range st.Problems {
			msg += "; " + p
		}
		msg += ")"
	}
	return msg
}

// timeout fails the devices of the wave that have not answered.
func (r *runner) timeout(n int) {
	for idx := range r.st.Devices[:n] {
		d := &r.st.Devices[idx]
		switch {
		case d.Result != "":
		case r.waitsHealth(idx) && r.health[idx].soak:
			// Answered: its soak ends at its own time (tick).
		case r.waitsHealth(idx):
			r.setResult(idx, resultUnhealthy, r.healthMessage(idx))
		default:
			r.setResult(idx, resultTimeout, fmt.Sprintf("no answer within %s", time.Duration(r.st.Timeout)))
		}
	}
}

// progress shows the wave's counts when they changed (or always, with force).
func (r *runner) progress(force bool) {
	n := r.st.Waves[r.st.Wave].Count
	c := r.st.counts(r.st.Devices[:n])
	line := fmt.Sprintf("wave %d/%d (%g%%, %d devices): %d done, %d failed, %d pending",
		r.st.Wave+1, len(r.st.Waves), r.st.Waves[r.st.Wave].Percent, n, c.Done, c.Failed, c.Pending+c.Unsent)
	if line != r.shown || force {
		fmt.Fprintln(r.stderr, line)
		r.shown = line
	}
}

// unconnectedPlugs reads from a device's answer to an install or a
// refresh the hardware plugs that wait for an operator; nothing when it
// names none (or is not an object).
func unconnectedPlugs(result json.RawMessage) []string {
	var out struct {
		Plugs []string `json:"unconnected-plugs"`
	}
	if json.Unmarshal(result, &out) != nil || len(out.Plugs) > 100 {
		return nil
	}
	return out.Plugs
}
