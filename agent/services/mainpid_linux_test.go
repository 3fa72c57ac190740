package services

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// TestMainPIDKept runs a launcher (a shell) that forks a service process,
// and, once that ends, another: mainPIDLocked reports the first while it
// runs, from the process it kept, then the second, not the first's stale
// PID.
func TestMainPIDKept(t *testing.T) {
	// The shell writes each child's PID on its output.
	cmd := exec.Command("sh", "-c", `sleep 30 & echo $!; wait; sleep 30 & echo $!; wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	readPID := func() int {
		t.Helper()
		var b [16]byte
		n, err := out.Read(b[:])
		if err != nil {
			t.Fatalf("reading the child's PID: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		if err != nil {
			t.Fatalf("child's PID: %v", err)
		}
		return pid
	}
	r := &run{pid: cmd.Process.Pid}
	first := readPID()
	testutil.WaitFor(t, "the first child", 10*time.Second, func() bool { return r.mainPIDLocked() == first })
	if r.main != first {
		t.Fatalf("kept: got %d, want %d", r.main, first)
	}
	if got := r.mainPIDLocked(); got != first {
		t.Errorf("second call: got %d, want %d", got, first)
	}
	syscall.Kill(first, syscall.SIGKILL)
	second := readPID()
	testutil.WaitFor(t, "the second child", 10*time.Second, func() bool { return r.mainPIDLocked() == second })
	syscall.Kill(second, syscall.SIGKILL)
}
