package services

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/profiles"
)

// A stop signals the launcher's process group, but a process of the
// service may have left that group (setsid, setpgid: a daemon that
// detaches) and would outlive the stop. Every process of the service is in
// its command's cgroup, paddock.APP.CMD (the launcher joins it before the
// app starts), so the stop also signals the processes of that cgroup.
//
// That cgroup is the command's, not the run's: an interactive
// 'paddock run APP.SVC' of the service's own command shares it, and ends
// with the stop too (as with systemd's control-group kill mode); stopping a
// service ends its command. The sandbox's init (PID 1 of its namespace) is
// spared: it holds no work of the service, ends on its own once idle, and
// keeps the next start on the fast path.

// commandProcs returns the processes of the cgroup of the command of s,
// but the sandboxes' inits.
func commandProcs(s *service) ([]int, error) {
	g, err := cgroup.Load(profiles.Label(s.app, s.name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pids, err := g.Procs()
	if err != nil {
		return nil, err
	}
	var left []int
	for _, pid := range pids {
		if !sandboxInit(pid) {
			left = append(left, pid)
		}
	}
	return left, nil
}

// signalCommand sends sig to every process of the command of s but the
// sandboxes' inits, and returns how many there were.
func signalCommand(s *service, sig syscall.Signal) (int, error) {
	pids, err := commandProcs(s)
	if err != nil {
		return 0, fmt.Errorf("cannot signal the processes of %s: %w", s.key(), err)
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
	return len(pids), nil
}

// endCommand waits until deadline for the processes of the command of s to
// end, then SIGKILLs them until none is left (10 s at most).
func endCommand(s *service, deadline time.Time) error {
	for time.Now().Before(deadline) {
		if pids, err := commandProcs(s); err != nil || len(pids) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		n, err := signalCommand(s, syscall.SIGKILL)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return fmt.Errorf("cannot stop %s: processes of its cgroup did not end after SIGKILL", s.key())
}

// sandboxInit reports whether pid is the init of a sandbox: PID 1 of a PID
// namespace below the agent's.
func sandboxInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "NSpid:" {
			return f[len(f)-1] == "1"
		}
	}
	return false
}
