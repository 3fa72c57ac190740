package launch

import (
	"errors"
	"fmt"
	"os"
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
//   - the app's own user gains a POSIX ACL entry on each node that new
//     grants and loses it on each that no policy of the app grants any
//     more (see package devacl); the nodes' modes stay as they were;
//   - the kept sandbox is kept when only what a launch applies itself
//     changed (devices, seccomp, AppArmor, user, environment); when new
//     mounts other directories or changes the network, it is set aside
//     (its running processes keep it until they end) and the next launch
//     builds a new one, so no launch ever joins a stale sandbox;
//   - when new takes away access to a device old allowed, the command's
//     running processes are stopped, since a descriptor they opened stays usable: SIGTERM,
//     then SIGKILL after StopGrace. stopped lists their PIDs, for the
//     change's log; a supervisor restarts services.
//
// old may be nil (nothing was granted before). Errors leave what was done
// in place: calling it again with the same policies finishes the job.
func ApplyPolicy(old, new *profiles.Policy) (stopped []int, err error) {
	if new == nil {
		return nil, errors.New("internal error: ApplyPolicy without a new policy")
	}
	if err := new.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: new policy: %w", err)
	}
	if old == nil {
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
	if !reflect.DeepEqual(old.AppArmor, new.AppArmor) && apparmor.Enabled() {
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
	if g == nil || !revokesDevice(old.Devices, new.Devices) {
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

// revokesDevice reports whether an access that old allows is missing from
// new: an entry of old that no entry of new covers with all its access.
func revokesDevice(old, new []profiles.Device) bool {
	for _, o := range old {
		covered := false
		for _, n := range new {
			if n.Type == o.Type && (n.Major == -1 || n.Major == o.Major) && (n.Minor == -1 || n.Minor == o.Minor) && strings.Trim(o.Access, n.Access) == "" {
				covered = true
				break
			}
		}
		if !covered {
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
			apps = append(apps, proc{pid, startTime(pid)})
		}
	}
	for _, p := range apps {
		if startTime(p.pid) == p.start {
			syscall.Kill(p.pid, syscall.SIGTERM)
		}
	}
	alive := func() []proc {
		return slices.DeleteFunc(slices.Clone(apps), func(p proc) bool { return startTime(p.pid) != p.start })
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

// nodesOf returns the device nodes p grants its user, with the permission
// bits: the node of each single device its allowlist names beyond the
// default set (the defaults are open to everyone already), found through
// sysfs (/sys/dev/char/MAJ:MIN names the node). A root policy needs none.
func nodesOf(p *profiles.Policy) map[string]uint16 {
	out := map[string]uint16{}
	if p.Root {
		return out
	}
	defaults := profiles.DefaultDevices()
	for _, d := range p.Devices {
		if d.Major < 0 || d.Minor < 0 || slices.ContainsFunc(defaults, func(x profiles.Device) bool {
			return x.Type == d.Type && x.Major == d.Major && x.Minor == d.Minor
		}) {
			continue
		}
		perm := devacl.ParsePerm(d.Access)
		if perm == 0 {
			continue
		}
		if path, ok := nodeOf(d.Type, d.Major, d.Minor); ok {
			out[path] |= perm
		}
	}
	return out
}

// sysDev is where sysfs lists devices by number; tests do not change it:
// the nodes are the host's.
const sysDev = "/sys/dev"

// nodeOf returns the /dev node of device major:minor of type typ ("c" or
// "b"), as its uevent names it, when that node exists and is that device.
func nodeOf(typ string, major, minor int64) (string, bool) {
	kind := map[string]string{"c": "char", "b": "block"}[typ]
	if kind == "" {
		return "", false
	}
	b, err := os.ReadFile(fmt.Sprintf("%s/%s/%d:%d/uevent", sysDev, kind, major, minor))
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(b)) {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVNAME=")
		if !ok || name == "" || strings.Contains(name, "..") {
			continue
		}
		path := "/dev/" + name
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil {
			return "", false
		}
		want := uint32(unix.S_IFCHR)
		if typ == "b" {
			want = unix.S_IFBLK
		}
		if st.Mode&unix.S_IFMT != want || unix.Major(st.Rdev) != uint32(major) || unix.Minor(st.Rdev) != uint32(minor) {
			return "", false
		}
		return path, true
	}
	return "", false
}
