package testutil

import (
	"os/exec"
	"testing"
	"time"
)

// TestTerminate checks that a process that ends on SIGTERM ends at once,
// and one that ignores it is killed after the grace period.
func TestTerminate(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		min, max time.Duration
	}{
		{"ends on TERM", "exec sleep 30", 0, 5 * time.Second},
		{"ignores TERM", "trap '' TERM; while :; do sleep 0.05; done", 200 * time.Millisecond, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tt.script)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			time.Sleep(100 * time.Millisecond) // let the shell set its trap
			start := time.Now()
			Terminate(cmd.Process, exited, 200*time.Millisecond)
			if took := time.Since(start); took < tt.min || took > tt.max {
				t.Errorf("got it stopped in %v, want between %v and %v", took, tt.min, tt.max)
			}
			if cmd.ProcessState == nil {
				t.Errorf("got state %v, want the process ended", cmd.ProcessState)
			}
		})
	}
}
