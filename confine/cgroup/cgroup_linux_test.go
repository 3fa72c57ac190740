package cgroup

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
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// childEnv selects the case a re-executed test binary runs as a sandboxed child.
const childEnv = "PADDOCK_CGROUP_TEST_CHILD"

func TestMain(m *testing.M) {
	if c := os.Getenv(childEnv); c != "" {
		os.Exit(runChild(c))
	}
	os.Exit(m.Run())
}

// runChild waits for "go" on stdin (sent once it is in its group), then acts.
func runChild(name string) int {
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 3
	}
	switch name {
	case "open":
		// Each further line is a path to open; the answer is "ok" or the errno name.
		for {
			fmt.Println(openResult(in.Text()))
			if !in.Scan() {
				return 0
			}
		}
	case "fork":
		return childFork()
	case "alloc":
		b := make([]byte, 256<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("survived")
		return 0
	}
	return 3
}

func openResult(path string) string {
	if path == "go" {
		return "ready"
	}
	f, err := os.Open(path)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return err.Error()
	}
	f.Close()
	return "ok"
}

// childFork starts 50 sleeps and reports "threads N started N failed N errs E".
func childFork() int {
	threads := 0
	if s, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(s), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				fmt.Sscan(v, &threads)
			}
		}
	}
	var started []*exec.Cmd
	errs := map[string]bool{}
	for range 50 {
		c := exec.Command("/bin/sleep", "60")
		if err := c.Start(); err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				errs[unix.ErrnoName(errno)] = true
			} else {
				errs[err.Error()] = true
			}
			continue
		}
		started = append(started, c)
	}
	for _, c := range started {
		c.Process.Kill()
		c.Wait()
	}
	var e []string
	for k := range errs {
		e = append(e, k)
	}
	fmt.Printf("threads %d started %d failed %d errs %s\n", threads, len(started), 50-len(started), strings.Join(e, ","))
	return 0
}

// child is a re-executed test binary, already in its group and told to go.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startChild starts case name, moves it into g and lets it go.
func startChild(t *testing.T, g *Group, name string, env ...string) *child {
	t.Helper()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(append(os.Environ(), childEnv+"="+name), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := g.AddProc(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// ask sends a line and returns the child's answer.
func (c *child) ask(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
	if !c.out.Scan() {
		t.Fatalf("child exited without answering %q: %v", line, c.out.Err())
	}
	return c.out.Text()
}

// setup gives the test a unique Parent below the test's own cgroups, removed
// (killing what is left in it) when the test ends, even on failure.
func setup(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t, "create cgroups")
	if Mode() == "none" {
		t.Skip("no cgroup hierarchy mounted at /sys/fs/cgroup")
	}
	oldParent, oldNest := Parent, nestUnderSelf
	Parent = fmt.Sprintf("paddock-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	nestUnderSelf = true
	parents := testParents()
	t.Cleanup(func() {
		for _, p := range parents {
			removeTree(t, p)
		}
		Parent, nestUnderSelf = oldParent, oldNest
	})
}

// testParents lists Parent's directory in every hierarchy this test may use.
func testParents() []string {
	var dirs []string
	if paths, err := v1Paths("x"); err == nil {
		for n, p := range paths {
			dirs = append(dirs, filepath.Dir(filepath.Join(sysfsCgroup, string(n), p)))
		}
	}
	for _, m := range []string{sysfsCgroup, filepath.Join(sysfsCgroup, "unified")} {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			old := v2Mount
			v2Mount = m
			if g, err := v2Group("x"); err == nil {
				dirs = append(dirs, filepath.Dir(filepath.Join(m, g)))
			}
			v2Mount = old
		}
	}
	return dirs
}

// removeTree kills the processes in the cgroup tree at dir and removes it.
func removeTree(t testing.TB, dir string) {
	var subdirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			subdirs = append(subdirs, p)
		}
		return nil
	})
	slices.Reverse(subdirs)
	for _, d := range subdirs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				var pid int
				fmt.Sscan(f, &pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("cannot remove test cgroup: %v", err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func without(rules []DeviceRule, major, minor int64) []DeviceRule {
	return slices.DeleteFunc(slices.Clone(rules), func(r DeviceRule) bool { return r.Major == major && r.Minor == minor })
}

// blockNode makes a block device node (7:0, loop) in a temporary directory.
func blockNode(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "blk")
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
	if r := openResult(p); r == "EACCES" {
		t.Skipf("cannot open device nodes in %s here (nodev?): %s", p, r)
	}
	return p
}

func TestDevices(t *testing.T) {
	setup(t)
	testDevices(t)
}

func testDevices(t *testing.T) {
	g, err := Ensure("paddock.app.devices", Spec{Devices: DefaultDevices()})
	if err != nil {
		t.Fatal(err)
	}
	blk := blockNode(t)
	c := startChild(t, g, "open")
	if got := c.out.Scan() && c.out.Text() == "ready"; !got {
		t.Fatalf("child did not get ready")
	}
	for _, tc := range []struct{ path, want string }{{"/dev/null", "ok"}, {"/dev/zero", "ok"}, {blk, "EPERM"}} {
		if got := c.ask(t, tc.path); got != tc.want {
			t.Errorf("open %s: got %s, want %s", tc.path, got, tc.want)
		}
	}
	// Disconnect /dev/zero while the child runs.
	if err := g.SetDevices(without(DefaultDevices(), 1, 5)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{{"/dev/null", "ok"}, {"/dev/zero", "EPERM"}, {blk, "EPERM"}} {
		if got := c.ask(t, tc.path); got != tc.want {
			t.Errorf("after removing zero: open %s: got %s, want %s", tc.path, got, tc.want)
		}
	}
	// And connect it again.
	if err := g.SetDevices(DefaultDevices()); err != nil {
		t.Fatal(err)
	}
	if got := c.ask(t, "/dev/zero"); got != "ok" {
		t.Errorf("after adding zero back: open /dev/zero: got %s, want ok", got)
	}
}

func TestPids(t *testing.T) {
	setup(t)
	g, err := Ensure("paddock.app.pids", Spec{Devices: DefaultDevices(), PidsMax: 10})
	if err != nil {
		t.Fatal(err)
	}
	// One thread keeps the child's own count low and stable.
	c := startChild(t, g, "fork", "GOMAXPROCS=1")
	if !c.out.Scan() {
		t.Fatalf("fork child gave no report")
	}
	var threads, started, failed int
	var errs string
	if _, err := fmt.Sscanf(c.out.Text(), "threads %d started %d failed %d errs %s", &threads, &started, &failed, &errs); err != nil {
		t.Fatalf("report %q: %v", c.out.Text(), err)
	}
	t.Logf("child: %s", c.out.Text())
	if started < 1 || threads+started > 10 {
		t.Errorf("got %d sleeps started next to %d threads, want at most 10 tasks in all", started, threads)
	}
	if failed < 40 || errs != "EAGAIN" {
		t.Errorf("got %d forks failing with %s, want at least 40 with EAGAIN", failed, errs)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("fork child: %v", err)
	}
	if pids, err := g.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("got processes %v (%v) left in the group, want none", pids, err)
	}
}

func TestMemory(t *testing.T) {
	setup(t)
	g, err := Ensure("paddock.app.memory", Spec{Devices: DefaultDevices(), MemoryMax: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if g.v1 != nil {
		for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
			p := filepath.Join(g.v1Dirs["memory"], f)
			if exists(p) {
				if v, _ := readInt(p); v != 32<<20 {
					t.Errorf("%s: got %d, want %d", f, v, 32<<20)
				}
			}
		}
	}
	c := startChild(t, g, "alloc")
	if c.out.Scan() {
		t.Errorf("child allocating 256 MiB in a 32 MiB group said %q", c.out.Text())
	}
	err = c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("got %v, want the child killed", err)
	}
	if ws := exit.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("got child %v, want it killed by SIGKILL", exit)
	}
	// The host (this test process) goes on and can allocate.
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
}

func TestEnsureIdempotentAndDelete(t *testing.T) {
	setup(t)
	spec := Spec{Devices: DefaultDevices(), MemoryMax: 64 << 20, PidsMax: 100, CPUPercent: 50}
	g, err := Ensure("paddock.app.idem", spec)
	if err != nil {
		t.Fatal(err)
	}
	dirs := groupDirs(g)
	before := snapshot(t, dirs)
	if _, err := Ensure("paddock.app.idem", spec); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if after := snapshot(t, dirs); after != before {
		t.Errorf("second Ensure changed the group:\n%s\nwant\n%s", after, before)
	}
	// Lifting the limits works too.
	if _, err := Ensure("paddock.app.idem", Spec{Devices: DefaultDevices()}); err != nil {
		t.Fatalf("Ensure without limits: %v", err)
	}

	sleep := exec.Command("/bin/sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	if err := g.AddProc(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if pids, err := g.Procs(); err != nil || !slices.Equal(pids, []int{sleep.Process.Pid}) {
		t.Errorf("Procs: got %v, %v, want [%d]", pids, err, sleep.Process.Pid)
	}
	err = Delete("paddock.app.idem")
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), fmt.Sprint(sleep.Process.Pid)) {
		t.Errorf("Delete of a busy group: got %v, want ErrBusy naming pid %d", err, sleep.Process.Pid)
	}
	sleep.Process.Kill()
	sleep.Wait()
	if err := Delete("paddock.app.idem"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, d := range dirs {
		if exists(d) {
			t.Errorf("%s still exists after Delete", d)
		}
	}
	if err := Delete("paddock.app.idem"); err != nil {
		t.Errorf("second Delete: got %v, want nil", err)
	}
}

func groupDirs(g *Group) []string {
	if g.v2 != nil {
		return []string{g.v2Dir}
	}
	var d []string
	for _, p := range g.v1Dirs {
		d = append(d, p)
	}
	slices.Sort(d)
	return d
}

// snapshot reads the files Ensure manages, and the attached device programs.
func snapshot(t *testing.T, dirs []string) string {
	var b strings.Builder
	for _, d := range dirs {
		for _, f := range []string{"devices.list", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max", "cpu.cfs_quota_us", "memory.max", "memory.swap.max", "cpu.max"} {
			if v, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				fmt.Fprintf(&b, "%s/%s: %s\n", d, f, strings.TrimSpace(string(v)))
			}
		}
		if ids := devicePrograms(t, d); ids != nil {
			fmt.Fprintf(&b, "programs: %v\n", ids)
		}
	}
	return b.String()
}

func devicePrograms(t *testing.T, dir string) []ebpf.ProgramID {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return nil
	}
	var ids []ebpf.ProgramID
	for _, p := range q.Programs {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestV2Devices drives the unified hierarchy of a hybrid host, where the
// eBPF device program works even though no controllers are enabled.
func TestV2Devices(t *testing.T) {
	setup(t)
	if Mode() != "hybrid" {
		t.Skipf("cgroup mode is %s: the other tests already use this host's only device controller", Mode())
	}
	old := v2Mount
	v2Mount = filepath.Join(sysfsCgroup, "unified")
	t.Cleanup(func() { v2Mount = old })
	testDevices(t)

	g, err := Load("paddock.app.devices")
	if err != nil {
		t.Fatal(err)
	}
	before := devicePrograms(t, g.v2Dir)
	if _, err := Ensure("paddock.app.devices", Spec{Devices: DefaultDevices()}); err != nil {
		t.Fatal(err)
	}
	// Ensure with the rules already in place must not reload the program.
	if ids := devicePrograms(t, g.v2Dir); len(ids) != 1 || !slices.Equal(ids, before) {
		t.Errorf("got device programs %v after Ensure, want the one program %v left in place", ids, before)
	}
}

func BenchmarkEnsureAddProc(b *testing.B) {
	testutil.NeedRoot(b, "create cgroups")
	oldParent, oldNest := Parent, nestUnderSelf
	Parent, nestUnderSelf = fmt.Sprintf("paddock-bench-%d", os.Getpid()), true
	parents := testParents()
	defer func() {
		for _, p := range parents {
			removeTree(b, p)
		}
		Parent, nestUnderSelf = oldParent, oldNest
	}()
	sleep := exec.Command("/bin/sleep", "600")
	if err := sleep.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	spec := Spec{Devices: DefaultDevices(), MemoryMax: 64 << 20, PidsMax: 100, CPUPercent: 50}
	for b.Loop() {
		g, err := Ensure("paddock.app.bench", spec)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.AddProc(sleep.Process.Pid); err != nil {
			b.Fatal(err)
		}
	}
}
