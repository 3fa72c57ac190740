package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/devacl"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
)

// liveApp has two commands, so that one of them keeps the app's user's
// access to a node that the other is disconnected from.
const liveApp = `name: escape
version: "1"
summary: Serves requests to open device nodes
apps:
  escape:
    command: bin/escape
  keeper:
    command: bin/escape
`

// TestLiveConnectRealDevice connects a real character device of this
// machine (a serial port) to a running app and disconnects it again,
// through launch.ApplyPolicy, as the interface manager does (issue 11, live
// effect): the app opens the node after the connect without a restart (the
// device cgroup allows it and its user has an ACL entry on the node); the
// process holding the node open is stopped at the disconnect, and a new
// launch gets EPERM from the device cgroup while the app's other command
// keeps the ACL entry; once no command has it, the node's mode and ACL
// are what they were.
func TestLiveConnectRealDevice(t *testing.T) {
	needRoot(t)
	node, dev := realSerialNode(t)
	d := newDevice(t)
	buildEscape(t, d, liveApp)
	d.setupKeys("escape")
	d.ok("pack", filepath.Join(d.work, "escape-src"), "-o", "escape.pdk")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
	d.startDaemon("")
	d.ok("install", "escape.pdk")
	uid := appUID(t, d, "escape")
	guardNode(t, node, uid)
	// Policies name nodes on the device, below the root directory: the
	// test's root shows the real node there.
	bindNode(t, node, d.path(node))
	oldRoot := dirs.Root
	dirs.SetRootDir(d.root)
	t.Cleanup(func() { dirs.SetRootDir(oldRoot) })

	app := startServe(t, d, false)
	if got := app.ask("open " + node); got != "EACCES" && got != "EPERM" {
		t.Fatalf("open %s before the connect: got %s, want EACCES or EPERM", node, got)
	}
	init := sandboxInit(t, d, "escape", "escape", 1)

	// Connect both commands.
	escOld, escNew := withDevice(t, "escape", node, dev)
	keepOld, keepNew := withDevice(t, "keeper", node, dev)
	begin := time.Now()
	for _, p := range [][2]*profiles.Policy{{escOld, escNew}, {keepOld, keepNew}} {
		if stopped, err := launch.ApplyPolicy(p[0], p[1]); err != nil || len(stopped) > 0 {
			t.Fatalf("connect %s: stopped %v, %v", p[1].Command, stopped, err)
		}
	}
	applied := time.Now()
	if got := app.ask("open " + node); got != "allowed" {
		t.Fatalf("open %s after the connect, same process: got %s, want allowed", node, got)
	}
	t.Logf("connect: ApplyPolicy of 2 commands took %v; from its return to the running app's open succeeding: %v", applied.Sub(begin), time.Since(applied))
	if now := sandboxInit(t, d, "escape", "escape", 1); now != init {
		t.Errorf("the connect replaced the kept sandbox %d (now %d): its running app would lose it", init, now)
	}
	// A launch by the fast path joins the same sandbox and gets the node too.
	second := startServe(t, d, true)
	if got := second.ask("open " + node); got != "allowed" {
		t.Errorf("open %s in a second launch after the connect: got %s, want allowed", node, got)
	}
	second.close()
	if now := sandboxInit(t, d, "escape", "escape", 1); now != init {
		t.Errorf("the launch after the connect did not join the kept sandbox %d (now %d)", init, now)
	}

	// A holder of the node is stopped at the disconnect of its command.
	if got := app.ask("hold " + node); got != "allowed" {
		t.Fatalf("hold %s: got %s, want allowed", node, got)
	}
	holder := app.hostPID(t)
	keep(t, escOld)
	stopped, err := launch.ApplyPolicy(escNew, escOld)
	if err != nil {
		t.Fatalf("disconnect escape: %v", err)
	}
	if !slices.Equal(stopped, []int{holder}) {
		t.Errorf("disconnect stopped %v, want the holder [%d]", stopped, holder)
	}
	if code := app.wait(t); code != 128+int(unix.SIGTERM) {
		t.Errorf("the holder's 'paddock run' exited %d, want %d (SIGTERM)", code, 128+int(unix.SIGTERM))
	}
	// The other command still has the node: the ACL entry stays, and the
	// device cgroup alone refuses the disconnected command.
	if a, err := devacl.Get(node); err != nil {
		t.Fatal(err)
	} else if _, ok := a.User(uint32(uid)); !ok {
		t.Errorf("ACL of %s after disconnecting one of two commands: %s, want an entry for %d", node, a, uid)
	}
	again := startServe(t, d, false)
	if got := again.ask("open " + node); got != "EPERM" {
		t.Errorf("open %s after the disconnect: got %s, want EPERM (device cgroup)", node, got)
	}

	// The last command goes: the node is as it was, and the running app is refused.
	keep(t, keepOld)
	if stopped, err := launch.ApplyPolicy(keepNew, keepOld); err != nil || len(stopped) > 0 {
		t.Fatalf("disconnect keeper (nothing runs): stopped %v, %v", stopped, err)
	}
	if a, err := devacl.Get(node); err != nil || !a.Minimal() {
		t.Errorf("ACL of %s after the last disconnect: %v %v, want none", node, a, err)
	}
	if got := again.ask("open " + node); got == "allowed" {
		t.Errorf("open %s after the last disconnect: allowed", node)
	}
	again.close()
}

// realSerialNode returns a serial port of this machine and its device
// entry, or skips.
func realSerialNode(t *testing.T) (string, profiles.Device) {
	t.Helper()
	for _, n := range []string{"/dev/ttyS0", "/dev/ttyS1", "/dev/ttyAMA0"} {
		var st unix.Stat_t
		if unix.Stat(n, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			return n, profiles.Device{Type: "c", Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)), Access: "rw"}
		}
	}
	t.Skip("no serial port on this machine (/dev/ttyS0, ttyS1, ttyAMA0)")
	return "", profiles.Device{}
}

// guardNode checks, when the test ends, that the host's node is as it was
// before: it first takes off any entry the test left for uid.
func guardNode(t *testing.T, node string, uid int) {
	t.Helper()
	var before unix.Stat_t
	if err := unix.Stat(node, &before); err != nil {
		t.Fatal(err)
	}
	acl := func() string {
		b := make([]byte, 4096)
		n, err := unix.Getxattr(node, devacl.XattrName, b)
		if err != nil {
			return err.Error()
		}
		return string(b[:n])
	}
	was := acl()
	t.Cleanup(func() {
		if err := devacl.Revoke(node, uid); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		var after unix.Stat_t
		if err := unix.Stat(node, &after); err != nil {
			t.Fatal(err)
		}
		if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid || acl() != was {
			t.Errorf("%s changed: mode %o uid %d gid %d, was %o %d %d", node, after.Mode, after.Uid, after.Gid, before.Mode, before.Uid, before.Gid)
		}
	})
}

// bindNode shows the host's node at path (the same inode).
func bindNode(t *testing.T, node, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(node, path, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", node, err)
	}
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
}

// withDevice returns the policy of command cmd of escape revision 1 and a
// copy that allows dev, the device of node, too, through a serial-port plug
// whose disconnect stops the command, which it keeps with its profiles, as a connect
// does.
func withDevice(t *testing.T, cmd, node string, dev profiles.Device) (old, new *profiles.Policy) {
	t.Helper()
	old, _, err := profiles.LoadPolicy("escape", 1, cmd)
	if err != nil {
		t.Fatal(err)
	}
	n := *old
	n.Devices = append(slices.Clone(old.Devices), dev)
	n.Connections = append(slices.Clone(old.Connections), profiles.Connected{
		Plug: "serial", Interface: "serial-port", Slot: "gadget:serial0", Nodes: []string{node}, OnDisconnect: profiles.DisconnectStop,
	})
	keep(t, &n)
	return old, &n
}

// keep keeps p and its profiles, as the agent does before it applies a
// changed policy.
func keep(t *testing.T, p *profiles.Policy) {
	t.Helper()
	if err := profiles.Generate([]*profiles.Policy{p}, profiles.Options{}); err != nil {
		t.Fatal(err)
	}
}

// served is a running 'paddock run escape -- serve'.
type served struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	done chan error
}

// startServe starts the escape app's serve mode, by the Go launcher or
// the fast path, and stops it (by PID) when the test ends.
func startServe(t *testing.T, d *device, fast bool) *served {
	t.Helper()
	cmd := runEscapeCmd(d, fast, "serve")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{t: t, cmd: cmd, in: in, out: bufio.NewScanner(outR), done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { testutil.Terminate(cmd.Process, s.done, 5*time.Second) })
	return s
}

// ask sends one request and returns the answer after "VERB: ".
func (s *served) ask(req string) string {
	s.t.Helper()
	if _, err := fmt.Fprintln(s.in, req); err != nil {
		s.t.Fatalf("request %q: %v", req, err)
	}
	if !s.out.Scan() {
		s.t.Fatalf("request %q: the app answered nothing (%v)", req, s.out.Err())
	}
	_, answer, _ := strings.Cut(s.out.Text(), ": ")
	return answer
}

// hostPID returns the app's PID on the host: the process of its cgroup
// whose PID in its own namespace is the one it reports.
func (s *served) hostPID(t *testing.T) int {
	t.Helper()
	inner := s.ask("pid")
	g, err := cgroup.Load(profiles.Label("escape", "escape"))
	if err != nil {
		t.Fatal(err)
	}
	pids, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		f := strings.Fields(procField(pid, "NSpid"))
		if len(f) >= 2 && f[len(f)-1] == inner {
			return pid
		}
	}
	t.Fatalf("no process of the cgroup has PID %s in its sandbox", inner)
	return 0
}

// wait waits for 'paddock run' to end and returns its exit code.
func (s *served) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatal("the app did not end")
	}
	return -1
}

// close ends the app by closing its input.
func (s *served) close() {
	s.in.Close()
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(10 * time.Second):
		s.t.Error("the app did not end on end of input")
	}
}
