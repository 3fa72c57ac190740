package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/internal/testutil"
)

// binary is the paddock binary built for these tests by TestMain.
var binary string

// examples is the absolute path of the examples folder.
var examples string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paddock-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "paddock")
	if examples, err = filepath.Abs("../../examples"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built as 'make build' builds it: static, with cgo for libseccomp.
	build := exec.Command("go", "build", "-tags", "osusergo,netgo", "-ldflags", "-linkmode external -extldflags -static", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build paddock: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// device is a paddock root, a key store and a work directory for one test,
// with the agent run as a child process.
type device struct {
	t                *testing.T
	root, keys, work string
	daemon           *exec.Cmd
	daemonDone       chan error
	daemonLog        *bytes.Buffer
}

// needRoot skips tests that mount revisions.
func needRoot(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t, "loop-mount app revisions")
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		testutil.NeedCommand(t, tool, "squashfs-tools")
	}
}

func newDevice(t *testing.T) *device {
	t.Helper()
	d := &device{t: t, root: t.TempDir(), keys: t.TempDir(), work: t.TempDir()}
	t.Cleanup(d.cleanup)
	return d
}

// cleanup stops the agent and unmounts whatever is mounted under the root,
// even when the test failed half-way.
func (d *device) cleanup() {
	d.stopDaemon()
	d.unmountAll()
	d.removeCgroups()
}

// removeCgroups removes the cgroups that the apps of this root got, in
// every hierarchy, stopping (by PID) what the test left running in them.
func (d *device) removeCgroups() {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup.ParentFor(d.root)))
	for _, parent := range dirs {
		groups, _ := filepath.Glob(filepath.Join(parent, "*"))
		for _, g := range groups {
			if fi, err := os.Stat(g); err != nil || !fi.IsDir() {
				continue
			}
			procs, _ := os.ReadFile(filepath.Join(g, "cgroup.procs"))
			for _, p := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			for range 100 {
				if err := os.Remove(g); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := os.Remove(parent); err != nil && !os.IsNotExist(err) {
			d.t.Errorf("cleanup: cannot remove cgroup %s: %v", parent, err)
		}
	}
}

// unmountAll unmounts everything mounted under the root.
func (d *device) unmountAll() {
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var dirs []string
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], d.root+"/") {
			dirs = append(dirs, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			d.t.Errorf("cleanup: cannot unmount %s: %v", dir, err)
		}
	}
}

func (d *device) env() []string {
	return append(os.Environ(), "PADDOCK_ROOT="+d.root, "PADDOCK_KEYS="+d.keys)
}

// result is the outcome of one paddock command.
type result struct {
	stdout, stderr string
	code           int
}

// paddock runs the binary in the work directory.
func (d *device) paddock(args ...string) result {
	d.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = d.work
	cmd.Env = d.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("paddock %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs paddock and fails the test unless it succeeds.
func (d *device) ok(args ...string) string {
	d.t.Helper()
	r := d.paddock(args...)
	if r.code != 0 {
		d.t.Fatalf("paddock %s: exit code %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// startDaemon starts the agent, with fault (a PADDOCK_FAULT spec) if not
// empty, and waits for its socket.
func (d *device) startDaemon(fault string, args ...string) {
	d.t.Helper()
	cmd := exec.Command(binary, append([]string{"daemon"}, args...)...)
	cmd.Env = d.env()
	if fault != "" {
		cmd.Env = append(cmd.Env, "PADDOCK_FAULT="+fault)
	}
	d.daemonLog = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = d.daemonLog, d.daemonLog
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.daemon = cmd
	d.daemonDone = make(chan error, 1)
	go func() { d.daemonDone <- cmd.Wait() }()
	sock := filepath.Join(d.root, "run/paddock.sock")
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-d.daemonDone:
			d.daemon = nil
			d.t.Fatalf("daemon exited at start: %v\n%s", err, d.daemonLog)
		default:
		}
		if r := d.paddock("list"); r.code == 0 {
			return
		}
		_ = sock
	}
	d.t.Fatalf("daemon did not answer within 10s\n%s", d.daemonLog)
}

// stopDaemon stops the agent with SIGTERM, if it runs.
func (d *device) stopDaemon() {
	if d.daemon == nil {
		return
	}
	testutil.Terminate(d.daemon.Process, d.daemonDone, 15*time.Second)
	d.daemon = nil
}

// waitDaemonExit waits for the agent to exit by itself (a fault) and returns its exit code.
func (d *device) waitDaemonExit() int {
	d.t.Helper()
	select {
	case err := <-d.daemonDone:
		d.daemon = nil
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(20 * time.Second):
		d.t.Fatalf("daemon did not exit\n%s", d.daemonLog)
	}
	return -1
}

// appInfo is what 'paddock list --json' says of an app.
type appInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Revision  int    `json:"revision"`
	Revisions []struct {
		Revision int    `json:"revision"`
		SHA256   string `json:"sha256"`
	} `json:"revisions"`
}

func (d *device) list() []appInfo {
	d.t.Helper()
	var apps []appInfo
	if err := json.Unmarshal([]byte(d.ok("list", "--json")), &apps); err != nil {
		d.t.Fatal(err)
	}
	return apps
}

// setupOperator creates the operator key "ops", delegated by the root
// (setupKeys) for every device name: ops.delegation, which fleet commands
// carry.
func (d *device) setupOperator() {
	d.t.Helper()
	d.ok("key", "create", "ops")
	d.ok("key", "delegate", "--key", "root", "--to", "ops", "--role", "operator", "--names", "*", "-o", "ops.delegation")
}

// setupKeys creates a root key trusted by the device and a publisher key
// delegated for names.
func (d *device) setupKeys(names string) {
	d.t.Helper()
	d.ok("key", "create", "root")
	d.ok("key", "create", "pub")
	testutil.WriteFile(d.t, filepath.Join(d.work, "root.asc"), d.ok("key", "export", "root"))
	d.ok("key", "trust", "root.asc")
	d.ok("key", "delegate", "--key", "root", "--to", "pub", "--role", "publisher", "--names", names, "-o", "pub.delegation")
}

// packHello packs the example app as version, signed as revision rev by
// pub, into hello-REV.pdk, and returns the file name.
func (d *device) packHello(version string, rev int) string {
	d.t.Helper()
	src := filepath.Join(d.work, "src-"+version)
	if err := os.CopyFS(src, os.DirFS(filepath.Join(examples, "hello"))); err != nil {
		d.t.Fatal(err)
	}
	yaml := filepath.Join(src, "meta/app.yaml")
	b, err := os.ReadFile(yaml)
	if err != nil {
		d.t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "version:") {
			l = fmt.Sprintf("version: %q", version)
		}
		lines = append(lines, l)
	}
	testutil.WriteFile(d.t, yaml, strings.Join(lines, "\n"))
	out := fmt.Sprintf("hello-%d.pdk", rev)
	d.ok("pack", src, "-o", out)
	d.ok("sign", out, "--key", "pub", "--revision", fmt.Sprint(rev), "--delegation", "pub.delegation")
	return out
}

func (d *device) path(p string) string { return filepath.Join(d.root, p) }
