package services

import "time"

// Backoff paces the restarts of a failing service: the first restart is
// immediate, then the delay starts at Min and doubles up to Max. A run
// that lasted Stable resets it. CrashLoop failures in a row, each within
// Stable of its start, make a crash loop.
type Backoff struct {
	Min, Max  time.Duration
	Stable    time.Duration
	CrashLoop int
}

// DefaultBackoff is the backoff of services.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Stable: 10 * time.Second, CrashLoop: 5}

// next returns the delay before restart number n (0 for the first) of a
// row of quick failures.
func (b Backoff) next(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// restartPolicy reports whether a service with restart policy p restarts
// after a run that ended with code.
func restartPolicy(p string, code int) bool {
	switch p {
	case "always":
		return true
	case "never":
		return false
	default: // on-failure
		return code != 0
	}
}
