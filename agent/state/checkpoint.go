package state

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
)

// The delays between retries of a failed checkpoint; tests shorten them.
var (
	retryMin = 250 * time.Millisecond
	retryMax = 30 * time.Second
)

// health is what the state knows about keeping itself on disk. It has its
// own lock, so that Degraded can be read while a task holds the state.
type health struct {
	mu sync.Mutex
	// unsaved is the error of the last checkpoint; nil once the state is on disk.
	unsaved error
	// reserve is why the reserve kept for the state is missing; nil when it is in place.
	reserve error
	// since is when the state became degraded; zero while healthy.
	since time.Time
	// backoff is the delay before the next retry, and retry its timer.
	backoff time.Duration
	retry   *time.Timer
	closed  bool
}

// SetLogger makes the state log when it cannot save itself or its reserve,
// and when it recovers.
func (s *State) SetLogger(log *slog.Logger) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.log = log
}

// OnRecovered sets a function called (with the state locked) when a state
// that could not be saved is saved again, so that the caller can resume the
// changes that waited for it.
func (s *State) OnRecovered(f func()) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.recovered = f
}

// Degraded returns why the state is not safely kept, with the time since
// when, or "" when it is: its last checkpoint failed (the state is kept in
// memory, retried with backoff, and changes wait for it), or the reserve of
// disk space kept for it is used up. It may be called without the lock.
func (s *State) Degraded() (reason string, since time.Time) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	switch {
	case s.h.unsaved != nil:
		return fmt.Sprintf("cannot save the agent's state: %v (it is kept in memory and saved again every %s at most; changes wait until then)", s.h.unsaved, retryMax), s.h.since
	case s.h.reserve != nil:
		return s.h.reserve.Error(), s.h.since
	}
	return "", time.Time{}
}

// unsaved reports whether the last checkpoint failed.
func (s *State) unsaved() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.h.unsaved != nil
}

// Close stops retrying failed checkpoints; the state must not be modified
// afterwards.
func (s *State) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closed = true
	if s.h.retry != nil {
		s.h.retry.Stop()
		s.h.retry = nil
	}
}

// checkpoint writes the state to disk, using the reserve when the disk is
// full. On failure the state stays modified, in memory, and a retry is
// scheduled. The state must be locked.
func (s *State) checkpoint() {
	raw, err := s.encode()
	if err == nil {
		err = s.write(raw)
	}
	if err != nil {
		s.setHealth(fmt.Errorf("cannot checkpoint state: %w", err), s.h.reserve)
		return
	}
	s.modified = false
	s.size = len(raw)
	s.setHealth(nil, s.keepReserve())
}

// write writes raw atomically; when the disk is full it releases the
// reserve and tries once more.
func (s *State) write(raw []byte) error {
	err := atomicfile.WriteFile(s.path, raw, 0o600)
	if err == nil || !isNoSpace(err) {
		return err
	}
	if released, rerr := s.releaseReserve(); rerr != nil || !released {
		return err
	}
	s.logf(slog.LevelWarn, "disk full: released the reserve kept for the state, to save it", "reserve", s.reservePath())
	return atomicfile.WriteFile(s.path, raw, 0o600)
}

// setHealth records the outcome of a checkpoint or of keeping the reserve,
// logs changes of health and schedules a retry while degraded. The state
// must be locked.
func (s *State) setHealth(unsaved, reserve error) {
	s.h.mu.Lock()
	wasUnsaved, wasDegraded := s.h.unsaved != nil, s.h.unsaved != nil || s.h.reserve != nil
	s.h.unsaved, s.h.reserve = unsaved, reserve
	degraded := unsaved != nil || reserve != nil
	switch {
	case degraded && !wasDegraded:
		s.h.since = timeNow()
	case !degraded:
		s.h.since, s.h.backoff = time.Time{}, 0
	}
	if degraded && s.h.retry == nil && !s.h.closed {
		s.h.backoff = min(max(2*s.h.backoff, retryMin), retryMax)
		s.h.retry = time.AfterFunc(s.h.backoff, s.retryCheckpoint)
	}
	recovered := s.recovered
	s.h.mu.Unlock()

	switch {
	case unsaved != nil && !wasUnsaved:
		s.logf(slog.LevelError, "cannot save the state: keeping it in memory and retrying", "err", unsaved)
	case unsaved == nil && wasUnsaved:
		s.logf(slog.LevelInfo, "state saved again")
		if recovered != nil {
			recovered()
		}
	}
	if reserve != nil && !wasDegraded {
		s.logf(slog.LevelWarn, "no reserve for the state", "err", reserve)
	}
}

// retryCheckpoint runs from the retry timer: it writes the state again, or
// makes its reserve again.
func (s *State) retryCheckpoint() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.mu.Lock()
	s.h.retry = nil
	closed := s.h.closed
	s.h.mu.Unlock()
	if closed {
		return
	}
	if s.modified {
		s.checkpoint()
		return
	}
	s.setHealth(nil, s.keepReserve())
}

func (s *State) logf(level slog.Level, msg string, args ...any) {
	s.h.mu.Lock()
	log := s.log
	s.h.mu.Unlock()
	if log != nil {
		log.Log(context.Background(), level, msg, args...)
	}
}
