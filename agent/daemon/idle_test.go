package daemon

import (
	"testing"
	"time"
)

func TestIdleRelease(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		at   int    // seconds after t0
		what string // "woke", "request" (an API request), "busy" (the loop found a change in progress) or "idle"
		want bool   // what due reports (for busy and idle)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"not before the quiet time", []step{{4, "idle", false}, {5, "idle", true}}},
		{"once per quiet spell", []step{{5, "idle", true}, {10, "idle", false}, {60, "idle", false}}},
		{"a wake starts a new spell", []step{{5, "idle", true}, {7, "woke", false}, {10, "idle", false}, {12, "idle", true}}},
		{"a request starts a new spell", []step{{5, "idle", true}, {7, "request", false}, {10, "idle", false}, {12, "idle", true}}},
		{"a request older than the last wake changes nothing", []step{{4, "woke", false}, {3, "request", false}, {9, "idle", true}}},
		{"never while a change is in progress", []step{{5, "busy", false}, {10, "busy", false}, {14, "idle", false}, {15, "idle", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idleRelease{quiet: 5 * time.Second, last: t0}
			for _, s := range tt.steps {
				switch s.what {
				case "woke":
					r.woke(at(s.at))
					continue
				case "request":
					r.saw(at(s.at))
					continue
				}
				if got := r.due(at(s.at), s.what == "busy"); got != s.want {
					t.Errorf("due at %d s (%s): got %v, want %v", s.at, s.what, got, s.want)
				}
			}
		})
	}
}
