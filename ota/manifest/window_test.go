package manifest

import (
	"strings"
	"testing"
	"time"
)

// TestParseHealthWindow checks health-window: a positive duration up to
// MaxHealthWindow, DefaultHealthWindow when left out.
func TestParseHealthWindow(t *testing.T) {
	const head = "name: x\nversion: '1'\n"
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "", want: DefaultHealthWindow},
		{in: "health-window: 5s\n", want: 5 * time.Second},
		{in: "health-window: 10m\n", want: 10 * time.Minute},
		{in: "health-window: 10m1s\n", err: "f:3: health-window: 10m1s is longer than 10m0s"},
		{in: "health-window: 0s\n", err: `f:3: health-window: must be positive, got "0s"`},
		{in: "health-window: -5s\n", err: "must be positive"},
		{in: "health-window: 30\n", err: `f:3: health-window: invalid duration "30"`},
		{in: "health-window: [30s]\n", err: "f:3: health-window:"},
	} {
		m, err := Parse([]byte(head+tc.in), "f")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := m.HealthWindowOrDefault(); got != tc.want {
			t.Errorf("%q: got window %v, want %v", tc.in, got, tc.want)
		}
	}
}
