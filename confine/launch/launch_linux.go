package launch

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
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

// namespaces are joined in this order; mnt comes last, since it changes
// the root under which the others' /proc paths were opened.
var namespaces = []struct {
	name string
	kind int
}{{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS}}

// Run runs the command described by spec in its sandbox, with the caller's
// standard input and outputs, and returns its exit code (128+N when a
// signal N ended it).
func Run(spec *Spec) (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("cannot run an app: the sandbox needs root (try with sudo)")
	}
	lock, err := lockRecord(spec.Label, spec.Revision)
	if err != nil {
		return 0, fmt.Errorf("cannot set up the sandbox of %s: %w", spec.Label, err)
	}
	defer lock.Close()
	if err := checkPolicy(spec); err != nil {
		return 0, err
	}
	g, err := cgroup.Ensure(spec.Label, spec.Cgroup)
	if err != nil {
		return 0, fmt.Errorf("cannot set up the cgroup of %s: %w", spec.Label, err)
	}
	// The launcher joins the app's cgroup itself, so that the sandbox's
	// init and the app are in it from their first instruction on.
	if err := g.AddProc(os.Getpid()); err != nil {
		return 0, fmt.Errorf("cannot join the cgroup of %s: %w", spec.Label, err)
	}
	rec, err := ensureSandbox(spec, lock)
	if err != nil {
		return 0, err
	}
	// The next launches can take the fast path (fastpath.c).
	if spec.OneOff {
		// The launch file keeps starting the command, not this.
	} else if err := writeLaunchFile(spec, rec, g.ProcsFiles(), spec.SeccompPath); err != nil {
		return 0, err
	} else {
		reexecService(spec, lock)
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, forwarded...)
	defer signal.Stop(sig)
	pid, err := startApp(spec, rec.PID)
	if err != nil {
		return 0, err
	}
	// The app is in the sandbox: its init may no longer end under it.
	lock.Close()
	return wait(pid, sig)
}

// startApp forks the app into the sandbox of init from a thread that has
// joined the sandbox's namespaces and given up every privilege, so that the
// app inherits that thread's state: no capabilities, no_new_privs, the
// seccomp filter and the AppArmor profile to enter at exec. The thread is
// never unlocked: it exits with its goroutine.
func startApp(s *Spec, init int) (int, error) {
	fds := make([]int, len(namespaces))
	for i, ns := range namespaces {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", init, ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("cannot join the sandbox of %s: %w", s.Label, err)
		}
		defer unix.Close(fd)
		fds[i] = fd
	}
	last, err := lastCap()
	if err != nil {
		return 0, err
	}
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		pid, err := joinAndFork(s, fds, last)
		ch <- result{pid, err}
	}()
	r := <-ch
	return r.pid, r.err
}

// joinAndFork runs on a locked thread that it strips for good.
func joinAndFork(s *Spec, fds []int, lastCap int) (int, error) {
	// The AppArmor profile is named through the host's /proc, before the
	// thread's root becomes the sandbox's.
	if s.AppArmor {
		if err := enterAppArmor(s.Label); err != nil {
			return 0, err
		}
	}
	// A thread may join a mount namespace only with a filesystem context of its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return 0, os.NewSyscallError("unshare(CLONE_FS)", err)
	}
	for i, ns := range namespaces {
		if err := unix.Setns(fds[i], ns.kind); err != nil {
			return 0, fmt.Errorf("cannot join the %s namespace of the sandbox: %w", ns.name, os.NewSyscallError("setns", err))
		}
	}
	if err := dropPrivileges(s, lastCap); err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(s.Argv[0], s.Argv, &syscall.ProcAttr{
		Dir:   s.DataDir,
		Env:   appEnv(s.Env),
		Files: appFiles(s),
	})
	if err != nil {
		return 0, fmt.Errorf("cannot execute %s: %w", s.Argv[0], err)
	}
	return pid, nil
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
