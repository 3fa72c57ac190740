package launch

import (
	"testing"
	"time"
)

// obs is what the init sees at a time after its start: an app process or none.
type obs struct {
	at   time.Duration
	busy bool
}

func TestIdleWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name     string
		timeout  time.Duration
		retiring bool
		steps    []obs
		want     bool // due after the last step
	}{
		{name: "idle shorter than the timeout", timeout: time.Minute, steps: []obs{{0, false}, {59 * time.Second, false}}, want: false},
		{name: "idle for the timeout", timeout: time.Minute, steps: []obs{{0, false}, {time.Minute, false}}, want: true},
		{name: "busy resets the clock", timeout: time.Minute, steps: []obs{{50 * time.Second, true}, {100 * time.Second, false}}, want: false},
		{name: "busy now", timeout: time.Minute, steps: []obs{{time.Hour, true}}, want: false},
		{name: "retiring and idle", timeout: time.Minute, retiring: true, steps: []obs{{time.Second, false}}, want: true},
		{name: "retiring but busy", timeout: time.Minute, retiring: true, steps: []obs{{time.Second, true}}, want: false},
		{name: "zero timeout is the default", timeout: 0, steps: []obs{{DefaultIdleTimeout - time.Second, false}}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newIdleWatch(tt.timeout, t0)
			w.retiring = tt.retiring
			var got bool
			for _, s := range tt.steps {
				got = w.due(s.busy, t0.Add(s.at))
			}
			if got != tt.want {
				t.Errorf("got due %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdleInterval(t *testing.T) {
	tests := []struct{ timeout, want time.Duration }{
		{time.Second, 200 * time.Millisecond},
		{5 * time.Minute, 30 * time.Second},
		{time.Millisecond, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := newIdleWatch(tt.timeout, time.Time{}).interval(); got != tt.want {
			t.Errorf("timeout %v: got interval %v, want %v", tt.timeout, got, tt.want)
		}
	}
}
