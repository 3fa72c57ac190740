package launch

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/profiles"
)

// SandboxPID returns the PID of the init of the kept sandbox of command cmd
// of revision rev of app, or an error when none runs (the command was not
// started, or its sandbox ended).
func SandboxPID(app, cmd string, rev int) (int, error) {
	rec, ok := readRecord(recordPath(profiles.Label(app, cmd), rev))
	if !ok {
		return 0, fmt.Errorf("the sandbox of %s.%s revision %d is not running", app, cmd, rev)
	}
	return rec.PID, nil
}

// DialLoopback connects to port on the loopback of the network namespace
// of process pid (a sandbox's init): the agent's health probes reach an
// app's port there, and nowhere else. The socket is made on a thread that
// joined the namespace, which it keeps once made.
func DialLoopback(ctx context.Context, pid, port int) (net.Conn, error) {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, fmt.Errorf("cannot open the network namespace of process %d: %w", pid, err)
	}
	defer ns.Close()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is locked and never unlocked when it cannot go back
		// to the agent's namespace: it ends with the goroutine.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, os.NewSyscallError("setns", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
