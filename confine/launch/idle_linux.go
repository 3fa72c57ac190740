package launch

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultIdleTimeout is how long a kept sandbox stays without an app
// process in it before its init ends, releasing the namespaces, the mounts
// (and so the package's loop device) and its cgroup membership. The next
// launch builds it again, which costs about one Go launch.
const DefaultIdleTimeout = 5 * time.Minute

// idleEnv overrides DefaultIdleTimeout for the sandboxes that a launch
// starts, as a Go duration ("2s"); for tests.
const idleEnv = "PADDOCK_SANDBOX_IDLE"

// idleTimeout is the idle timeout of the sandboxes this process starts.
func idleTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(idleEnv)); err == nil && d > 0 {
		return d
	}
	return DefaultIdleTimeout
}

// idleWatch decides when a sandbox's init may end: when no app process
// has been seen in it for timeout, or, once retiring (the agent stopped),
// as soon as none is left.
type idleWatch struct {
	timeout  time.Duration
	lastBusy time.Time
	retiring bool
}

func newIdleWatch(timeout time.Duration, now time.Time) *idleWatch {
	if timeout <= 0 {
		timeout = DefaultIdleTimeout
	}
	return &idleWatch{timeout: timeout, lastBusy: now}
}

// interval is how often the init looks: a fifth of the timeout, between
// 10ms and 30s.
func (w *idleWatch) interval() time.Duration {
	return min(max(w.timeout/5, 10*time.Millisecond), 30*time.Second)
}

// due records whether an app process runs at now, and reports whether the
// init may end.
func (w *idleWatch) due(busy bool, now time.Time) bool {
	if busy {
		w.lastBusy = now
		return false
	}
	return w.retiring || now.Sub(w.lastBusy) >= w.timeout
}

// appRunning reports whether a process other than the init runs in the
// init's PID namespace: the sandbox's /proc lists only those.
func appRunning() bool {
	f, err := os.Open("/proc")
	if err != nil {
		return true // cannot tell: stay
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(64)
		for _, n := range names {
			if n != "1" && n[0] >= '0' && n[0] <= '9' {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

// retire takes the record's lock exclusively, which no launch holds
// between reading the record and forking the app into the sandbox (they
// hold it shared), and reports whether the sandbox is still empty: then
// the init ends, still holding the lock, and the next launch finds the
// record stale and builds a new sandbox. Otherwise it lets the lock go.
func retire(lock *os.File) bool {
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	if !appRunning() {
		return true
	}
	unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	return false
}
