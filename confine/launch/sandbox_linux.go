package launch

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// setupFailed is the exit code of a sandbox that could not be set up, like a
// shell's "cannot execute".
const setupFailed = 126

// SandboxMain is the init of a sandbox: the paddock binary started by Run
// with SandboxArg, as PID 1 of new namespaces. It never returns.
func SandboxMain() {
	spec, err := readSpec()
	if err == nil {
		err = setupSandbox(spec)
	}
	var pid int
	if err == nil {
		pid, err = startApp(spec)
	}
	if err != nil {
		label := "app"
		if spec != nil {
			label = spec.App
		}
		fmt.Fprintf(os.Stderr, "error: cannot run %s: %v\n", label, err)
		os.Exit(setupFailed)
	}
	os.Exit(reap(pid))
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

// startApp forks the app from a thread stripped of every privilege, so that
// the app inherits that thread's state: no capabilities, no_new_privs, the
// seccomp filter and the AppArmor profile to enter at exec. The thread is
// never unlocked: it exits with its goroutine.
func startApp(s *Spec) (int, error) {
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		pid, err := dropAndFork(s)
		ch <- result{pid, err}
	}()
	r := <-ch
	return r.pid, r.err
}

func dropAndFork(s *Spec) (int, error) {
	if err := confineThread(s); err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(s.Argv[0], s.Argv, &syscall.ProcAttr{
		Dir:   s.DataDir,
		Env:   s.Env,
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		return 0, fmt.Errorf("cannot execute %s: %w", s.Argv[0], err)
	}
	return pid, nil
}

// reap waits for the app, passing signals on to it and reaping every other
// process that ends in the sandbox, and returns the app's exit code.
func reap(app int) int {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, forwarded...)
	go func() {
		for s := range sig {
			syscall.Kill(app, s.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return setupFailed
		}
		if pid == app {
			return exitCode(ws)
		}
	}
}
