package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Sentinel errors for a download that took too long, which Download wraps.
var (
	// ErrTooSlow means a mirror sent less than the minimum rate over a
	// whole window: a mirror that trickles a byte every few seconds
	// defeats the stall timeout and would hold the download for days.
	ErrTooSlow = errors.New("below the minimum rate")
	// ErrDeadline means the download as a whole, over every mirror and
	// retry, did not end within its deadline.
	ErrDeadline = errors.New("download deadline passed")
)

// Defaults of Limits, which tests swap.
var (
	// defaultMinRate is the least speed, in bytes per second, over
	// defaultRateWindow: 8 kbit/s, which the slowest cellular links keep.
	defaultMinRate int64 = 1 << 10
	// defaultRateWindow is the span over which the rate is measured.
	defaultRateWindow = 30 * time.Second
	// deadlineBase is the time a download gets beyond its size at the
	// minimum rate, for retries, backoff and the mirrors' answers.
	deadlineBase = 10 * time.Minute
)

// Limits bound how slow and how long a download may be. The zero value
// takes the defaults: at least 1 KiB/s over any 30 s, and 10 minutes plus
// the artifact's size at that rate in all.
type Limits struct {
	// MinRate is the least average speed, in bytes per second, over any
	// RateWindow of a transfer; a mirror below it is given up as a failed
	// attempt (retried, then the next mirror). 0 means the default, a
	// negative value no minimum. It is lowered to half of RateLimit when
	// that is smaller, so that the device's own cap never trips it.
	MinRate int64
	// RateWindow is how long the rate is averaged over; 0 means 30 s.
	RateWindow time.Duration
	// Deadline bounds the whole download, every mirror and retry
	// included. 0 means 10 minutes plus the artifact's size at MinRate
	// (no deadline when there is no minimum); a negative value none.
	Deadline time.Duration
}

// minRate returns the minimum rate in force, 0 for none.
func (l Limits) minRate(rateLimit int64) int64 {
	r := l.MinRate
	switch {
	case r < 0:
		return 0
	case r == 0:
		r = defaultMinRate
	}
	if rateLimit > 0 {
		r = min(r, rateLimit/2)
	}
	return max(r, 0)
}

func (l Limits) window() time.Duration {
	if l.RateWindow > 0 {
		return l.RateWindow
	}
	return defaultRateWindow
}

// deadline returns the time the download of size bytes may take, 0 for
// no limit.
func (l Limits) deadline(size, minRate int64) time.Duration {
	switch {
	case l.Deadline < 0:
		return 0
	case l.Deadline > 0:
		return l.Deadline
	case minRate <= 0:
		return 0
	}
	// In seconds first: size/minRate cannot overflow a Duration before
	// ~292 years.
	secs := min(size/minRate+1, int64(100*365*24*3600))
	return deadlineBase + time.Duration(secs)*time.Second
}

// slowError is the cause of an attempt ended by the rate guard.
type slowError struct {
	got     int64
	elapsed time.Duration
	min     int64
}

func (e *slowError) Error() string {
	return fmt.Sprintf("sent %s in %v, below the minimum of %s/s", sizeText(e.got), e.elapsed.Round(time.Millisecond), sizeText(e.min))
}

func (e *slowError) Unwrap() error { return ErrTooSlow }

// rateGuard counts the bytes of one attempt and cancels it when fewer
// than min per second arrived over the last window.
type rateGuard struct {
	n    atomic.Int64
	stop chan struct{}
}

// guardRate starts a guard; with min 0 it only counts.
func guardRate(minRate int64, window time.Duration, cancel context.CancelCauseFunc) *rateGuard {
	g := &rateGuard{stop: make(chan struct{})}
	if minRate > 0 {
		go g.watch(minRate, window, cancel)
	}
	return g
}

func (g *rateGuard) add(n int) { g.n.Add(int64(n)) }

func (g *rateGuard) close() { close(g.stop) }

// watch samples the count ten times per window and compares the bytes of
// the last whole window with the minimum, so that a burst at the start
// does not buy minutes of silence later.
func (g *rateGuard) watch(minRate int64, window time.Duration, cancel context.CancelCauseFunc) {
	const slots = 10
	type sample struct {
		at time.Time
		n  int64
	}
	tick := time.NewTicker(window / slots)
	defer tick.Stop()
	samples := []sample{{time.Now(), 0}}
	for {
		select {
		case <-g.stop:
			return
		case now := <-tick.C:
			samples = append(samples, sample{now, g.n.Load()})
		}
		if len(samples) <= slots {
			continue
		}
		first, last := samples[0], samples[len(samples)-1]
		samples = samples[1:]
		elapsed := last.at.Sub(first.at)
		got := last.n - first.n
		if float64(got) < float64(minRate)*elapsed.Seconds() {
			cancel(&slowError{got: got, elapsed: elapsed, min: minRate})
			return
		}
	}
}

// deadlineError is the cause of a download ended by its deadline.
type deadlineError struct{ limit time.Duration }

func (e *deadlineError) Error() string {
	return fmt.Sprintf("not done within its deadline of %v", e.limit)
}

func (e *deadlineError) Unwrap() error { return ErrDeadline }

// sizeText writes a byte count for people: 12 B, 1.5 KiB, 3.2 MiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
