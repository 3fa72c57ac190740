package launch

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setupFailed is the exit code of a sandbox that could not be set up, like a
// shell's "cannot execute".
const setupFailed = 126

// readyFD is the descriptor on which the sandbox init says it is ready, by
// closing it after writing "ok" or an error.
const readyFD = 4

// lockFD is the sandbox init's own open description of its record's lock
// file, which it locks exclusively to end (see retire).
const lockFD = 5

// SandboxMain is the init of a sandbox: the paddock binary started with
// SandboxArg as PID 1 of new namespaces. It builds the sandbox's mounts,
// says it is ready, then stays as the namespace's init for as long as the
// sandbox is kept: it reaps the processes that launches start in it, and
// ends once no app process has been left in it for the spec's idle timeout,
// or as soon as none is left after a SIGTERM (the agent's stop). It never
// returns.
func SandboxMain() {
	ready := os.NewFile(readyFD, "ready")
	lock := os.NewFile(lockFD, "lock")
	spec, err := readSpec()
	if err == nil {
		err = setupSandbox(spec)
	}
	if err != nil {
		fmt.Fprintf(ready, "%v", err)
		os.Exit(setupFailed)
	}
	// Launches run the app with less privilege than the init has: keep
	// them from reading its memory through /proc/1.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ready.Write([]byte("ok"))
	ready.Close()
	w := newIdleWatch(spec.IdleTimeout, time.Now())
	tick := time.NewTicker(w.interval())
	for {
		select {
		case <-chld:
			reapAll()
		case <-term:
			w.retiring = true
		case <-tick.C:
		}
		if w.due(appRunning(), time.Now()) && retire(lock) {
			os.Exit(0)
		}
	}
}

// reapAll reaps every child that has ended.
func reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

func readSpec() (*Spec, error) {
	f := os.NewFile(specFD, "spec")
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("cannot read the sandbox spec: %w", err)
	}
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("cannot decode the sandbox spec: %w", err)
	}
	return &s, nil
}

// setupSandbox builds the sandbox around the init: mounts, hostname, network.
func setupSandbox(s *Spec) error {
	if err := setupMounts(s); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(s.App)); err != nil {
		return os.NewSyscallError("sethostname", err)
	}
	if !s.Network {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	return nil
}
