// Package health keeps the health of each installed app, judged from the
// sources an app declares: a probe in its manifest (a command run in the
// app's sandbox, or an http or tcp connection to its port on loopback),
// its check-health hook, what the app itself says through the in-app
// socket (paddock ctl health), and its services (one in a crash loop is
// unhealthy). An app whose manifest declares none of them costs nothing:
// no timer, no goroutine.
//
// The health of an app is the worst of its sources' last words; the
// device's is the worst of its apps' and the agent's own (see
// agent/fleetlink). Health lives in memory: after a restart of the agent
// an app's health is unknown until a source speaks again.
package health

import (
	"time"
)

// Status is how an app is doing.
type Status string

// The statuses, from best to worst: okay, unknown (nothing said yet),
// waiting (starting up, or said so), error.
const (
	Okay    Status = "okay"
	Unknown Status = "unknown"
	Waiting Status = "waiting"
	Error   Status = "error"
)

// rank orders statuses from best (0) to worst.
func (s Status) rank() int {
	switch s {
	case Okay:
		return 0
	case Unknown:
		return 1
	case Waiting:
		return 2
	default:
		return 3
	}
}

// Valid reports whether s is one of the statuses an app may report
// (okay, waiting or error).
func (s Status) Valid() bool { return s == Okay || s == Waiting || s == Error }

// Source says where a health record came from.
type Source string

// The sources of health.
const (
	SourceProbe     Source = "probe"      // the manifest's health probe
	SourceHook      Source = "hook"       // the check-health hook
	SourceCtl       Source = "ctl"        // the app, through 'paddock ctl health'
	SourceCrashLoop Source = "crash-loop" // a service restarting again and again
)

// Health is the health of an app.
type Health struct {
	Status Status `json:"status"`
	// Message says why, in the source's words (one line, bounded).
	Message string `json:"message,omitempty"`
	// Source is where the worst word came from; empty when unknown.
	Source Source `json:"source,omitempty"`
	// Since is when the status (or message) last changed.
	Since time.Time `json:"since,omitzero"`
}

// Worse reports whether h is worse than o.
func (h Health) Worse(o Health) bool { return h.Status.rank() > o.Status.rank() }

// Worst returns the worst of hs, the first of equals; unknown when hs is empty.
func Worst(hs ...Health) Health {
	out := Health{Status: Unknown}
	for i, h := range hs {
		if i == 0 || h.Worse(out) {
			out = h
		}
	}
	return out
}

// maxMessage bounds a message, in bytes.
const maxMessage = 200
