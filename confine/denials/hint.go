package denials

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Rule says which denials one interface would have allowed. The agent
// passes the rules of its interface catalog (see NewCommand): the sandbox
// knows no interface by itself.
type Rule struct {
	// Plug is the interface's name.
	Plug string
	// Syscalls are system calls that seccomp denied.
	Syscalls []string
	// Capabilities are capabilities AppArmor denied.
	Capabilities []string
	// Families are socket families of AppArmor network denials;
	// Operations, when set, narrows them to those operations.
	Families, Operations []string
	// Paths are path.Match patterns on the whole denied path or, with a
	// trailing "/", on a prefix of it.
	Paths []string
}

// Catalog is the rules of every interface; the first rule that matches a
// denial names its plug, except that a rule naming the denied network
// operation beats one for every operation.
type Catalog []Rule

// forbidden explains syscalls and capabilities no interface grants.
var forbidden = map[string]string{
	"reboot":            "no interface allows reboot: apps cannot reboot the device; use 'paddock ctl reboot'",
	"sys_boot":          "no interface allows reboot: apps cannot reboot the device; use 'paddock ctl reboot'",
	"kexec_load":        "no interface allows kexec: apps cannot replace the kernel",
	"kexec_file_load":   "no interface allows kexec: apps cannot replace the kernel",
	"mount":             "no interface allows mount: the sandbox's mounts are fixed by paddock; ship content in the package or use the data dirs",
	"umount":            "no interface allows umount: the sandbox's mounts are fixed by paddock",
	"umount2":           "no interface allows umount: the sandbox's mounts are fixed by paddock",
	"pivot_root":        "no interface allows pivot_root: the sandbox's root is fixed by paddock",
	"move_mount":        "no interface allows mount: the sandbox's mounts are fixed by paddock",
	"fsopen":            "no interface allows mount: the sandbox's mounts are fixed by paddock",
	"fsmount":           "no interface allows mount: the sandbox's mounts are fixed by paddock",
	"open_tree":         "no interface allows mount: the sandbox's mounts are fixed by paddock",
	"sys_admin":         "no interface allows CAP_SYS_ADMIN: apps cannot administer the system",
	"clock_settime":     "no interface allows setting the clock: the device keeps its own time",
	"clock_adjtime":     "no interface allows setting the clock: the device keeps its own time",
	"settimeofday":      "no interface allows setting the clock: the device keeps its own time",
	"adjtimex":          "no interface allows setting the clock: the device keeps its own time",
	"stime":             "no interface allows setting the clock: the device keeps its own time",
	"sys_time":          "no interface allows setting the clock: the device keeps its own time",
	"init_module":       "no interface allows loading kernel modules: the device maker lists them in the gadget",
	"finit_module":      "no interface allows loading kernel modules: the device maker lists them in the gadget",
	"delete_module":     "no interface allows unloading kernel modules",
	"sys_module":        "no interface allows loading kernel modules: the device maker lists them in the gadget",
	"ptrace":            "no interface allows ptrace: apps cannot inspect other processes",
	"process_vm_readv":  "no interface allows reading another process's memory",
	"process_vm_writev": "no interface allows writing another process's memory",
	"sys_ptrace":        "no interface allows ptrace: apps cannot inspect other processes",
	"swapon":            "no interface allows swap: memory is managed by the device",
	"swapoff":           "no interface allows swap: memory is managed by the device",
	"sethostname":       "no interface allows changing the hostname: the device owns it",
	"setdomainname":     "no interface allows changing the domain name: the device owns it",
	"bpf":               "no interface allows bpf: apps cannot load kernel programs",
	"perf_event_open":   "no interface allows perf events: apps cannot profile the system",
	"acct":              "no interface allows process accounting",
	"quotactl":          "no interface allows disk quotas",
	"syslog":            "no interface allows reading the kernel log: use 'paddock logs'",
	"unshare":           "no interface allows new namespaces: the sandbox already has its own",
	"setns":             "no interface allows joining namespaces",
}

// Hint returns the interface (plug) that would allow d, or "" if none does.
func (c Catalog) Hint(d Denial) string {
	if d.Kind == "seccomp" {
		return c.first(func(r Rule) bool { return slices.Contains(r.Syscalls, d.Syscall) })
	}
	switch {
	case d.Capability != "":
		return c.first(func(r Rule) bool { return slices.Contains(r.Capabilities, d.Capability) })
	case d.Family != "":
		if plug := c.first(func(r Rule) bool {
			return slices.Contains(r.Families, d.Family) && slices.Contains(r.Operations, d.Operation)
		}); plug != "" {
			return plug
		}
		return c.first(func(r Rule) bool { return slices.Contains(r.Families, d.Family) && len(r.Operations) == 0 })
	}
	return c.first(func(r Rule) bool {
		return slices.ContainsFunc(r.Paths, func(p string) bool { return pathMatch(p, d.Path) })
	})
}

func (c Catalog) first(match func(Rule) bool) string {
	for _, r := range c {
		if match(r) {
			return r.Plug
		}
	}
	return ""
}

// pathMatch reports whether p matches pattern: the whole path, or with a
// trailing "/" in pattern, a path below a directory it matches.
func pathMatch(pattern, p string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/"); ok {
		m, _ := path.Match(dir, p)
		return m || prefixMatch(dir, p)
	}
	m, _ := path.Match(pattern, p)
	return m
}

// prefixMatch reports whether p is below a directory matching pattern.
func prefixMatch(pattern, p string) bool {
	n := strings.Count(pattern, "/")
	parts := strings.SplitN(p, "/", n+2)
	if len(parts) < n+2 {
		return false
	}
	m, _ := path.Match(pattern, strings.Join(parts[:n+1], "/"))
	return m
}

// Explain returns one sentence on d: the plug to connect, or why nothing
// can allow it.
func (c Catalog) Explain(d Denial) string {
	app := App(d)
	if app == "" {
		app = "APP"
	}
	if plug := c.Hint(d); plug != "" {
		return fmt.Sprintf("the %s interface allows this: declare the plug and run 'paddock connect %s:%s'", plug, app, plug)
	}
	key := d.Syscall
	if d.Kind == "apparmor" {
		key = d.Capability
	}
	if s, ok := forbidden[key]; ok {
		return s
	}
	switch {
	case d.Kind == "apparmor" && strings.HasPrefix(d.Path, "/var/lib/paddock/data/"):
		return "no interface allows this: an app reads and writes only its own data"
	case d.Kind == "apparmor" && strings.HasPrefix(d.Path, "/proc/sys/") && strings.ContainsAny(d.Requested, "wac"):
		return "no interface allows changing kernel settings: the device maker sets them in the gadget"
	case d.Kind == "apparmor" && strings.HasPrefix(d.Path, "/dev/"):
		return "no interface in the catalog covers " + d.Path + ": the device maker can offer it as a custom-device slot"
	}
	return "no interface in the catalog allows this; if the app needs it, report it to the app's publisher"
}
