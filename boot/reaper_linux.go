package boot

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reaper is PID 1's collector of exited children: every zombie, whether
// init started it or it was orphaned and re-parented to init. It reports
// the exit codes of the commands it started.
type reaper struct {
	mu    sync.Mutex
	waits map[int]reaped
}

type reaped struct {
	proc *os.Process
	code chan int
}

var _ starter = (*reaper)(nil)

func newReaper() *reaper { return &reaper{waits: map[int]reaped{}} }

// start starts cmd. It holds the lock so that cmd cannot be reaped before
// it is registered.
func (r *reaper) start(cmd *exec.Cmd) (<-chan int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	r.waits[cmd.Process.Pid] = reaped{cmd.Process, ch}
	return ch, nil
}

// reap collects every exited child without blocking and reports whether
// init has no children left.
func (r *reaper) reap() (none bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return true
		case err != nil || pid <= 0:
			return false
		}
		if w, ok := r.waits[pid]; ok {
			delete(r.waits, pid)
			w.proc.Release() // its pidfd; the process is gone
			w.code <- exitCode(ws)
		}
	}
}

// run reaps on every SIGCHLD, and every second in case one was missed,
// until ctx ends.
func (r *reaper) run(ctx context.Context) {
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, unix.SIGCHLD)
	defer signal.Stop(sigchld)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-sigchld:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// waitNone reaps until init has no children left or timeout passes, and
// reports whether none are left.
func (r *reaper) waitNone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !r.reap() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// exitCode is the shell's view of a wait status: the exit status, or
// 128+N after signal N.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return cmdExitAbove + int(ws.Signal())
	}
	return ws.ExitStatus()
}
