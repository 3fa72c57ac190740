package daemon

import (
	"time"

	"paddock.dev/paddock/internal/memrelease"
)

// releaseQuiet is how long the agent must have had nothing to do before it
// gives memory back: long enough that a burst of work (an install and the
// commands that follow it) is over.
const releaseQuiet = 5 * time.Second

// idleRelease decides when the agent gives back the memory that its last
// burst of work left mapped: once per quiet spell, when the loop has not
// been woken and no API request has come for releaseQuiet, and no change
// is in progress. It has no
// timer of its own: the loop asks at each of its runs.
type idleRelease struct {
	quiet time.Duration
	// last is when the loop was last woken or found a change in progress.
	last time.Time
	// done is set once this quiet spell's release was due.
	done bool
}

// woke records that something woke the loop at now.
func (r *idleRelease) woke(now time.Time) {
	r.last, r.done = now, false
}

// saw records activity that did not wake the loop (an API request), at t
// (zero: none yet).
func (r *idleRelease) saw(t time.Time) {
	if t.After(r.last) {
		r.woke(t)
	}
}

// noteRequest records that an API request arrived: the next release waits
// for quiet after it (the request may have mapped code and heap).
func (d *Daemon) noteRequest() { d.lastRequest.Store(time.Now().UnixNano()) }

// lastRequestTime returns when the last API request arrived, or the zero
// time.
func (d *Daemon) lastRequestTime() time.Time {
	if n := d.lastRequest.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// due reports whether the loop should release memory at now, busy telling
// whether a change is in progress; it reports true once per quiet spell.
func (r *idleRelease) due(now time.Time, busy bool) bool {
	if busy {
		r.woke(now)
		return false
	}
	if r.done || now.Sub(r.last) < r.quiet {
		return false
	}
	r.done = true
	return true
}

// release gives memory back (internal/memrelease) and logs what it did.
func (d *Daemon) release() {
	kib, err := memrelease.Release()
	if err != nil {
		d.log.Warn("cannot give memory back", "err", err)
		return
	}
	d.log.Debug("idle: gave memory back", "binary-pages-unmapped-kib", kib)
}
