package procstat

import (
	"bytes"
	"os"
	"testing"
)

// stat is a /proc/PID/stat line of a running process whose command name
// holds spaces and a ')', with start time 4242.
const stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		name, stat, want string
	}{
		{"running", stat, "4242"},
		{"sleeping", "7 (sh) S" + stat[len("1234 (a) b (c) S"):], "4242"},
		{"zombie", "1234 (a) Z" + stat[len("1234 (a) b (c) S"):], ""},
		{"dead", "1234 (a) X" + stat[len("1234 (a) b (c) S"):], ""},
		{"too few fields", "1234 (a) S 1 2 3\n", ""},
		{"no command name", "1234 a S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseStartTime([]byte(tt.stat)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStartTime(t *testing.T) {
	if StartTime(os.Getpid()) == "" {
		t.Error("got no start time for this process, want one")
	}
	if got := StartTime(1 << 30); got != "" {
		t.Errorf("start time of a process that cannot exist: got %q, want none", got)
	}
}

func TestParent(t *testing.T) {
	if got, want := Parent(os.Getpid()), os.Getppid(); got != want {
		t.Errorf("Parent of this process: got %d, want %d", got, want)
	}
	if got := Parent(1 << 30); got != 0 {
		t.Errorf("Parent of a process that cannot exist: got %d, want 0", got)
	}
}

func FuzzParseStartTime(f *testing.F) {
	f.Add([]byte(stat))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := ParseStartTime(b)
		if got != "" && !bytes.Contains(b, []byte(got)) {
			t.Errorf("got start time %q, which is not in the input", got)
		}
	})
}
