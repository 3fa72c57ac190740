package boot

import (
	"context"
	"fmt"
	"time"
)

// A tried boot proves itself to a watchdog. Stage 1 arms the watchdog
// (/dev/watchdog: i6300esb, or softdog when the machine has none) before
// it switches to the tried base and hands its descriptor to stage 2
// ($PADDOCK_WATCHDOG_FD). Stage 2's tryMonitor pets it while the agent is
// coming up (up to the try wait) and then while it answers on its API
// socket; it stops the watchdog (magic close) once the agent has committed
// the try. When the agent is not ready in time or stops answering, init
// notes why in the boot environment and reboots; if init itself, the base
// or the kernel hangs, nothing pets the watchdog and it resets the
// machine. Either way the next boot counts the attempt, and once the
// attempts are used up falls back, its reason carrying the note. A base
// whose init does not know the descriptor never pets it: it cannot prove
// itself, and is reset.

// Defaults of a tried boot (the kernel command line can change the first
// two: paddock.watchdog, paddock.trywait).
const (
	defaultWatchdogTimeout = 30 * time.Second
	defaultTryWait         = 180 * time.Second // agent ready under emulation can take a minute on a loaded host
	agentHangAfter         = 120 * time.Second // no answer from the agent for this long: hung (generous: a loaded emulated device answers slowly)
)

// watchdogEnv names the watchdog descriptor stage 1 passes to stage 2.
const watchdogEnv = "PADDOCK_WATCHDOG_FD"

// tryMonitor watches a tried boot; its functions are the device's in
// stage 2 and fakes in tests.
type tryMonitor struct {
	con       *console
	slot      string
	ready     <-chan struct{}                 // closed once the agent is ready
	pet       func() error                    // keeps the watchdog from firing
	disarm    func()                          // stops the watchdog
	committed func() (bool, error)            // whether the try has ended (committed, or marked bad)
	probe     func(ctx context.Context) error // asks the agent for an answer
	note      func(why string)                // records why the try is failing, for the fallback's reason
	reboot    func()                          // reboots cleanly
	tryWait   time.Duration
	hangAfter time.Duration
	interval  time.Duration
	now       func() time.Time
}

// run watches until the try ends, the monitor gives up on it (and
// reboots), or ctx ends.
func (m *tryMonitor) run(ctx context.Context) {
	start := m.now()
	lastAnswer := start
	ready := false
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		if done, err := m.committed(); err != nil {
			m.con.logf("tried boot: cannot read the boot environment: %v", err)
		} else if done {
			m.disarm()
			m.con.logf("tried base slot %s: the try has ended (committed or marked bad): watchdog stopped", m.slot)
			return
		}
		if !ready {
			select {
			case <-m.ready:
				ready, lastAnswer = true, m.now()
				m.note("its agent was ready, but it did not commit")
			default:
			}
		}
		switch {
		case !ready && m.now().Sub(start) > m.tryWait:
			m.giveUp(fmt.Sprintf("its agent was not ready within %v", m.tryWait))
			return
		case ready:
			pctx, cancel := context.WithTimeout(ctx, m.interval)
			err := m.probe(pctx)
			cancel()
			if err == nil {
				lastAnswer = m.now()
			} else if m.now().Sub(lastAnswer) > m.hangAfter {
				m.giveUp(fmt.Sprintf("its agent stopped answering for %v (%v)", m.hangAfter, err))
				return
			}
		}
		if err := m.pet(); err != nil {
			m.con.logf("tried boot: cannot pet the watchdog: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// giveUp notes why and reboots; the watchdog is left armed, in case the
// reboot hangs.
func (m *tryMonitor) giveUp(why string) {
	m.con.logf("tried base slot %s: %s: rebooting", m.slot, why)
	m.note(why)
	m.reboot()
}

// setNote records in the boot environment at path why the current try of
// slot is failing; when its attempts are used up, the fallback's reason
// carries it. It does nothing when slot is not being tried.
func setNote(path, slot, why string) error {
	return update(path, func(e *Env) error {
		if e.Trying == slot && e.Last.Slot == slot {
			e.Last.Reason = cleanText(why)
		}
		return nil
	})
}
