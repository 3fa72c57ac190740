package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/testutil"
)

// escapeApp is the app.yaml of the hostile app; its limits stop the bombs.
const escapeApp = `name: escape
version: "1"
summary: Tries every way out of its sandbox
apps:
  escape:
    command: bin/escape
    limits:
      pids: 64
      memory: 64M
`

// packEscape builds the hostile app (static, so that it runs in any base),
// packs and signs it as escape.pdk in d's work folder, with keys that
// allow hello and escape.
func packEscape(t *testing.T, d *device) {
	t.Helper()
	buildEscape(t, d, escapeApp)
	d.setupKeys("hello,escape")
	d.ok("pack", filepath.Join(d.work, "escape-src"), "-o", "escape.pdk")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
}

// buildEscape builds the hostile app into the escape-src folder of d's
// work folder, with yaml as its app.yaml.
func buildEscape(t *testing.T, d *device, yaml string) {
	t.Helper()
	src := filepath.Join(d.work, "escape-src")
	build := exec.Command("go", "build", "-o", filepath.Join(src, "bin/escape"), "./testdata/escape")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the escape app: %v\n%s", err, out)
	}
	testutil.WriteFile(t, filepath.Join(src, "meta/app.yaml"), yaml)
}

// installEscape installs the hostile app and a victim app and returns the
// host path of a secret in the victim's data.
func installEscape(t *testing.T, d *device) string {
	t.Helper()
	packEscape(t, d)
	d.startDaemon("")
	d.ok("install", "escape.pdk")
	d.ok("install", d.packHello("1.0", 1))
	secret := d.path("var/lib/paddock/data/hello/1/secret")
	testutil.WriteFile(t, secret, "the victim's secret")
	return secret
}

// TestEscape runs the hostile app's attempts in its sandbox on the host:
// each must fail with the expected error and leave the host unchanged,
// while the app's allowed actions work. The app runs as its own user, not
// root (issue 9: it was root, and read what only root may read).
func TestEscape(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	secret := installEscape(t, d)
	uid := appUID(t, d, "escape")
	// A file of the app's own data that only root may read: root passes
	// the owner bits, the app's user does not.
	rootOnly := d.path("var/lib/paddock/data/escape/1/root-only")
	testutil.WriteFile(t, rootOnly, "for root")
	if err := os.Chmod(rootOnly, 0o600); err != nil {
		t.Fatal(err)
	}

	denied := map[string][]string{
		"mount":          {"EPERM"},
		"umount":         {"EPERM"},
		"pivot_root":     {"EPERM"},
		"ptrace":         {"EPERM"},
		"kexec_load":     {"EPERM"},
		"init_module":    {"EPERM"},
		"bpf":            {"EPERM"},
		"keyctl":         {"EPERM"},
		"unshare_user":   {"EPERM"},
		"raw_socket":     {"EPERM"},
		"dev_mem":        {"EACCES", "ENOENT"}, // not every kernel has /dev/mem
		"block_device":   {"EACCES"},           // root's; the device cgroup refuses it too (TestEscapeRoot)
		"other_data":     {"ENOENT"},
		"root_only":      {"EACCES"},
		"read_shadow":    {"EACCES", "ENOENT"},
		"write_package":  {"EROFS"},
		"write_base":     {"EROFS"},
		"write_proc_sys": {"EROFS"},
		"clock":          {"EPERM"},
		"reboot":         {"EPERM"},
		"mknod":          {"EPERM"},
		"chroot":         {"EPERM"},
		"setns":          {"EPERM", "EACCES"}, // the init is not dumpable: its /proc/1/ns cannot even be opened
		"fork_bomb":      {"EAGAIN"},
	}
	allowed := []string{"own_data", "own_common", "tmp", "read_package", "loopback", "dev_null", "devices", "data_nosuid", "exec"}

	started := time.Now()
	hostname, _ := os.Hostname()
	domain := testutil.ReadFile(t, "/proc/sys/kernel/domainname")
	args := []string{"run", "escape", "--"}
	for name := range denied {
		switch name {
		case "other_data":
			name += "=" + secret
		case "root_only":
			name += "=/var/lib/paddock/data/escape/1/root-only" // where the app sees it
		}
		args = append(args, name)
	}
	args = append(args, allowed...)
	args = append(args, "id_u", "euid", "groups")
	// The first launch builds the sandbox in Go; the second takes the C
	// fast path into the kept sandbox: both must confine the same.
	got := map[string]string{}
	for _, fast := range []bool{false, true} {
		answers := runEscape(t, d, fast, args)
		if !fast {
			got = answers
			continue
		}
		for name, a := range answers {
			if name != "fork_bomb_count" && got[name] != a {
				t.Errorf("%s: the fast path answered %q, the Go launcher %q", name, a, got[name])
			}
		}
	}
	for name, want := range denied {
		if !slices.Contains(want, got[name]) {
			t.Errorf("%s: got %q, want %s", name, got[name], strings.Join(want, " or "))
		}
	}
	for _, name := range allowed {
		if got[name] != "allowed" {
			t.Errorf("%s: got %q, want allowed", name, got[name])
		}
	}
	// Who the app is: its own user, with its own group only.
	for name, want := range map[string]string{"id_u": strconv.Itoa(uid), "euid": strconv.Itoa(uid), "groups": fmt.Sprintf("[%d]", uid)} {
		if got[name] != want {
			t.Errorf("%s: got %q, want %q (the app's own user, not root)", name, got[name], want)
		}
	}
	if n, err := strconv.Atoi(got["fork_bomb_count"]); err != nil || n >= 64 {
		t.Errorf("fork bomb started %q children, want fewer than the pids limit of 64", got["fork_bomb_count"])
	}

	// The seccomp denials were logged, and 'debug denials' explains them.
	if _, err := os.Stat("/dev/kmsg"); err == nil {
		var denials []struct {
			Time        time.Time `json:"time"`
			Syscall     string    `json:"syscall"`
			Explanation string    `json:"explanation"`
		}
		if err := json.Unmarshal([]byte(d.ok("debug", "denials", "escape", "--json")), &denials); err != nil {
			t.Fatal(err)
		}
		// Without auditd the kernel rate-limits audit lines on the console
		// ("kauditd_printk_skb: N callbacks suppressed"): this run's may all
		// be dropped, so only what is listed can be checked.
		ours := 0
		for _, dn := range denials {
			if dn.Explanation == "" {
				t.Errorf("denial of %s has no explanation", dn.Syscall)
			}
			if !dn.Time.Before(started.Add(-time.Second)) {
				ours++
			}
		}
		t.Logf("'paddock debug denials escape' lists %d denials, %d of this run", len(denials), ours)
	}

	// The host is unchanged.
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("host name changed from %q to %q", hostname, h)
	}
	if got := testutil.ReadFile(t, "/proc/sys/kernel/domainname"); got != domain {
		t.Errorf("domain name changed from %q to %q", domain, got)
	}
	if _, err := os.Stat("/etc/paddock-escape"); err == nil {
		os.Remove("/etc/paddock-escape")
		t.Error("the app wrote /etc/paddock-escape on the host")
	}
	if got := testutil.ReadFile(t, secret); got != "the victim's secret" {
		t.Errorf("victim's data changed: %q", got)
	}
	if _, err := os.Stat(d.path("apps/escape/1/injected")); err == nil {
		t.Error("the app wrote into its package")
	}
}

// runEscape runs the escape app with args, by the Go launcher or the fast
// path, and returns its answers by case.
func runEscape(t *testing.T, d *device, fast bool, args []string) map[string]string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	// The Go runtime reports its package inits: the fast path has none.
	cmd.Env = append(d.env(), "GODEBUG=inittrace=1")
	if !fast {
		cmd.Env = append(cmd.Env, "PADDOCK_NO_FAST_PATH=1")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("paddock run escape (fast path %v): %v\n%s%s", fast, err, out, stderr.String())
	}
	if ranGo := strings.Contains(stderr.String(), "init runtime"); ranGo == fast {
		t.Errorf("fast path %v: the Go runtime ran: %v", fast, ranGo)
	}
	t.Logf("the escape app answered (fast path %v):\n%s", fast, out)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, answer, _ := strings.Cut(line, ": ")
		got[name] = answer
	}
	return got
}

// runEscapeCmd returns 'paddock run escape -- CASES' for d, by the C fast
// path into the kept sandbox or by the Go launcher.
func runEscapeCmd(d *device, fast bool, cases ...string) *exec.Cmd {
	cmd := exec.Command(binary, append([]string{"run", "escape", "--"}, cases...)...)
	cmd.Env = d.env()
	if !fast {
		cmd.Env = append(cmd.Env, "PADDOCK_NO_FAST_PATH=1")
	}
	return cmd
}

// TestEscapeMemoryBomb checks that the memory limit stops an app that
// touches more memory than it may: the kernel kills it.
func TestEscapeMemoryBomb(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d)
	for _, fast := range []bool{false, true} {
		cmd := runEscapeCmd(d, fast, "memory_bomb")
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 128+9 {
			t.Errorf("memory bomb (fast path %v): got exit code %d (%s), want %d (killed by SIGKILL)", fast, code, strings.TrimSpace(string(out)), 128+9)
		}
	}
}

// TestSandboxReapsOrphans checks that the init of a kept sandbox adopts a
// child the app leaves running, and reaps it once it ends: no zombie stays
// behind for as long as the sandbox is kept.
func TestSandboxReapsOrphans(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d)
	for _, fast := range []bool{false, true} {
		if out, err := runEscapeCmd(d, fast, "orphan").CombinedOutput(); err != nil || !strings.Contains(string(out), "orphan: allowed") {
			t.Fatalf("paddock run escape orphan (fast path %v): %v\n%s", fast, err, out)
		}
		pid := adoptedOrphan(t)
		if pid == 0 {
			t.Errorf("fast path %v: no sleep adopted by a sandbox init (ps: %s)", fast, psTree())
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for procState(pid) != "" {
			if time.Now().After(deadline) {
				t.Errorf("fast path %v: the orphan %d is still there in state %q after it ended", fast, pid, procState(pid))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// adoptedOrphan returns the host PID of a "sleep" whose parent is a sandbox
// init, waiting a second for it, or 0.
func adoptedOrphan(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, dir := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			comm, _ := os.ReadFile(dir + "/comm")
			if strings.TrimSpace(string(comm)) != "sleep" || procState(pid) == "Z" {
				continue
			}
			ppid := procField(pid, "PPid")
			cmdline, _ := os.ReadFile("/proc/" + ppid + "/cmdline")
			if slices.Contains(strings.Split(string(cmdline), "\x00"), launch.SandboxArg) {
				return pid
			}
		}
	}
	return 0
}

// procState returns the state letter of pid ("S", "Z", ...), or "" when
// there is no such process.
func procState(pid int) string {
	state, _, _ := strings.Cut(procField(pid, "State"), " ")
	return state
}

// procField returns a field of /proc/PID/status, or "".
func procField(pid int, key string) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// psTree describes the host's sleep processes and their parents, for a
// failure message.
func psTree() string {
	out, _ := exec.Command("ps", "-eo", "pid,ppid,stat,args").Output()
	var keep []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "sleep") || strings.Contains(line, launch.SandboxArg) {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	return strings.Join(keep, "; ")
}

// TestRunHello runs the foundation's example app in its sandbox.
func TestRunHello(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.startDaemon("")
	d.ok("install", d.packHello("1.0", 1))
	out := d.ok("run", "hello")
	if !strings.Contains(out, "hello") || !strings.Contains(out, "revision 1") {
		t.Errorf("paddock run hello: got %q, want a greeting naming hello and revision 1", out)
	}
	// The example appends to its data: the sandbox's $APP_DATA is the revision's data on the host.
	if got := testutil.ReadFile(t, d.path("var/lib/paddock/data/hello/1/greetings")); got == "" {
		t.Error("hello wrote nothing into its data")
	}
	r := d.paddock("run", "hello.nope")
	if r.code == 0 || !strings.Contains(r.stderr, `has no command "nope"`) {
		t.Errorf("unknown command: got %d %q", r.code, r.stderr)
	}
	r = d.paddock("run", "absent")
	if r.code == 0 || !strings.Contains(r.stderr, "not installed") {
		t.Errorf("app not installed: got %d %q", r.code, r.stderr)
	}

	// The app's cgroup exists while it is installed, and goes with it.
	group := filepath.Join("/sys/fs/cgroup/devices", cgroup.ParentFor(d.root), "paddock.hello.hello")
	if _, err := os.Stat(group); err != nil {
		t.Errorf("device cgroup of hello.hello: %v", err)
	}
	d.ok("remove", "hello")
	if _, err := os.Stat(group); !os.IsNotExist(err) {
		t.Errorf("device cgroup of hello.hello left after remove (%v)", err)
	}
}
