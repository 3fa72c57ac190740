package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/cgroup"
)

// SandboxArg is the hidden first argument with which the paddock binary
// starts as the init of a sandbox.
const SandboxArg = "__sandbox"

// specFD is the descriptor on which the sandbox init reads its Spec.
const specFD = 3

// forwarded are the signals the launcher passes on to the app.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT}

// Run runs the command described by spec in its sandbox, with the caller's
// standard input and outputs, and returns its exit code (128+N when a
// signal N ended it).
func Run(spec *Spec) (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("cannot run an app: the sandbox needs root (try with sudo)")
	}
	g, err := cgroup.Ensure(spec.Label, spec.Cgroup)
	if err != nil {
		return 0, fmt.Errorf("cannot set up the cgroup of %s: %w", spec.Label, err)
	}
	// The launcher joins the app's cgroup itself, so that the sandbox is in
	// it from its first instruction on.
	if err := g.AddProc(os.Getpid()); err != nil {
		return 0, fmt.Errorf("cannot join the cgroup of %s: %w", spec.Label, err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID
	if !spec.Network {
		flags |= unix.CLONE_NEWNET
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, forwarded...)
	defer signal.Stop(sig)
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"paddock", SandboxArg}, &syscall.ProcAttr{
		Env:   []string{},
		Files: []uintptr{0, 1, 2, r.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: uintptr(flags),
			Pdeathsig:  syscall.SIGKILL,
		},
	})
	if err != nil {
		w.Close()
		return 0, fmt.Errorf("cannot start the sandbox of %s: %w", spec.Label, err)
	}
	r.Close()
	_, werr := w.Write(data)
	w.Close()
	if werr != nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return wait(pid, sig)
}

// wait waits for pid, passing on the signals that arrive on sig, and returns
// its exit code.
func wait(pid int, sig chan os.Signal) (int, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sig:
				syscall.Kill(pid, s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("wait4", err)
		}
		return exitCode(ws), nil
	}
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
