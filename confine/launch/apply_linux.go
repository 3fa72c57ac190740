package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/devacl"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/procstat"
)

// StopGrace is how long ApplyPolicy lets a process it stops end on SIGTERM
// before it sends SIGKILL.
var StopGrace = 2 * time.Second

// ApplyPolicy makes a command that may be running follow its policy, which
// a connect or a disconnect changed from old to new, at once and without
// restarting it. The agent calls it after profiles.Generate has kept new
// (and its profiles) for every command of the app, once per command whose
// policy changed:
//
//   - the command's cgroup, which holds every process of it (kept sandbox
//     included), gets new's device allowlist: v1 devices.allow and
//     devices.deny, v2 a replaced eBPF program; running processes see it at
//     their next open;
//   - its AppArmor profile is replaced in the kernel (the .replace
//     interface, as apparmor_parser -r does), which running processes
//     confined by it follow;
//   - the app's own user gains a POSIX ACL entry on each node of new's
//     connected plugs (new.Nodes(), below the root directory, links
//     resolved) and loses it on each that no policy of the app's revision
//     names any more (see package devacl); the nodes' modes stay as they
//     were;
//   - the kept sandbox is kept when only what a launch applies itself
//     changed (devices, seccomp, AppArmor, user, environment); when new
//     mounts other directories or changes the network, it is set aside
//     (its running processes keep it until they end) and the next launch
//     builds a new one, so no launch ever joins a stale sandbox;
//   - when a plug of old is no longer connected to its slot in new and its
//     interface says so (Connected.OnDisconnect), the command's running
//     processes are stopped, since a descriptor they opened stays usable: SIGTERM,
//     then SIGKILL after StopGrace. stopped lists their PIDs, for the
//     change's log; a supervisor restarts services.
//
// old may be nil (no policy before: the AppArmor profile is loaded). Errors leave what was done
// in place: calling it again with the same policies finishes the job.
func ApplyPolicy(old, new *profiles.Policy) (stopped []int, err error) {
	if new == nil {
		return nil, errors.New("internal error: ApplyPolicy without a new policy")
	}
	if err := new.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: new policy: %w", err)
	}
	fresh := old == nil
	if fresh {
		old = &profiles.Policy{App: new.App, Command: new.Command, Revision: new.Revision, UID: new.UID, GID: new.GID, Root: new.Root}
	} else if old.App != new.App || old.Command != new.Command {
		return nil, fmt.Errorf("internal error: ApplyPolicy from %s to %s", profiles.Label(old.App, old.Command), profiles.Label(new.App, new.Command))
	}
	label := profiles.Label(new.App, new.Command)
	spec, err := new.CgroupSpec()
	if err != nil {
		return nil, err
	}
	lock, err := lockRecord(label, new.Revision)
	if err != nil {
		return nil, fmt.Errorf("cannot change the sandbox of %s: %w", label, err)
	}
	defer lock.Close()
	// A launch that read the old policy and takes the lock after this
	// finds the policy file changed and stops (see checkPolicy).
	g, err := cgroup.Load(label)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if g != nil {
		if err := g.SetDevices(spec.Devices); err != nil {
			return nil, err
		}
	}
	if (fresh || !reflect.DeepEqual(old.AppArmor, new.AppArmor)) && apparmor.Enabled() {
		if err := profiles.LoadAppArmor(new.App, new.Revision, []string{new.Command}); err != nil {
			return nil, err
		}
	}
	if err := applyNodes(old, new); err != nil {
		return nil, err
	}
	if !sameSandbox(old, new) {
		setAsideSandbox(label, new.Revision)
	}
	lock.Close()
	if g == nil || !stopsOnChange(old, new) {
		return nil, nil
	}
	return stopApps(g)
}

// sameSandbox reports whether a sandbox built for old serves new: the
// init builds only the mounts, the hostname and the network.
func sameSandbox(old, new *profiles.Policy) bool {
	return old.Revision == new.Revision && old.HostNetwork == new.HostNetwork && slices.Equal(old.Mounts, new.Mounts)
}

// setAsideSandbox forgets the kept sandbox of label's revision rev under
// its lock (held by the caller), so that the next launch builds a new one
// instead of stopping this one with the app in it, and asks its init to
// end once its processes have.
func setAsideSandbox(label string, rev int) {
	path := recordPath(label, rev)
	rec, ok := readRecord(path)
	os.Remove(path)
	os.Remove(launchPath(label, rev))
	if ok {
		syscall.Kill(rec.PID, syscall.SIGTERM)
	}
}

// stopsOnChange reports whether a plug of old that new no longer connects
// to the same slot stops the command's processes when disconnected.
func stopsOnChange(old, new *profiles.Policy) bool {
	for _, c := range old.Connections {
		still := slices.ContainsFunc(new.Connections, func(n profiles.Connected) bool { return n.Plug == c.Plug && n.Slot == c.Slot })
		if !still && c.OnDisconnect == profiles.DisconnectStop {
			return true
		}
	}
	return false
}

// stopApps stops the app processes of g and returns their PIDs.
func stopApps(g *cgroup.Group) ([]int, error) {
	pids, err := g.Procs()
	if err != nil {
		return nil, err
	}
	type proc struct {
		pid   int
		start string
	}
	var apps []proc
	for _, pid := range pids {
		if inSandbox(pid) {
			apps = append(apps, proc{pid, procstat.StartTime(pid)})
		}
	}
	for _, p := range apps {
		if procstat.StartTime(p.pid) == p.start {
			syscall.Kill(p.pid, syscall.SIGTERM)
		}
	}
	alive := func() []proc {
		return slices.DeleteFunc(slices.Clone(apps), func(p proc) bool { return procstat.StartTime(p.pid) != p.start })
	}
	deadline := time.Now().Add(StopGrace)
	for len(alive()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range alive() {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(alive()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var out []int
	for _, p := range apps {
		out = append(out, p.pid)
	}
	if left := alive(); len(left) > 0 {
		return out, fmt.Errorf("cannot stop process %d of %s: still running after SIGKILL", left[0].pid, g.Name())
	}
	return out, nil
}

// inSandbox reports whether process pid is an app process in a sandbox:
// it is in a PID namespace below the caller's (unlike a launcher) and is
// not that namespace's init. /proc/PID/status's NSpid lists its PID in
// each namespace from the one /proc belongs to down to its own.
func inSandbox(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) >= 2 && f[len(f)-1] != "1"
		}
	}
	return false
}

// applyNodes gives new's user the nodes new grants, and takes from old's
// user the nodes old granted that no policy of the app grants now (the
// user is the app's, shared by its commands).
func applyNodes(old, new *profiles.Policy) error {
	want := nodesOf(new)
	for path, perm := range want {
		if err := devacl.Grant(path, new.UID, perm); err != nil {
			return err
		}
	}
	if old.Root {
		return nil
	}
	drop := nodesOf(old)
	if old.UID == new.UID {
		for path := range want {
			delete(drop, path)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	for _, cmd := range profiles.PolicyCommands(new.App, new.Revision) {
		if cmd == new.Command {
			continue
		}
		p, _, err := profiles.LoadPolicy(new.App, new.Revision, cmd)
		if err != nil || p.UID != old.UID {
			continue
		}
		for path := range nodesOf(p) {
			delete(drop, path)
		}
	}
	for path := range drop {
		if err := devacl.Revoke(path, old.UID); err != nil {
			return err
		}
	}
	return nil
}

// nodesOf returns the device nodes of p's connected plugs that exist on
// this machine now, each once, links (/dev/serial/by-id/...) resolved: the
// nodes p's user is given. A node that appears later is given when the
// agent resolves the policy again (hotplug). A root policy needs none.
func nodesOf(p *profiles.Policy) map[string]uint16 {
	out := map[string]uint16{}
	if p.Root {
		return out
	}
	for _, n := range p.Nodes() {
		path, err := filepath.EvalSymlinks(filepath.Join(dirs.Root, n))
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR && st.Mode&unix.S_IFMT != unix.S_IFBLK {
			continue
		}
		out[path] = devacl.PermRead | devacl.PermWrite
	}
	return out
}
