// Package interfaces is the catalog of interfaces: what each plug means to
// every part of the sandbox. One file per interface registers it with what
// it adds to each backend (namespaces, mounts, devices, seccomp, AppArmor)
// and which denials it would allow, for the hints of 'paddock debug
// denials'. The agent turns an app's plugs into each command's resolved
// policy with it; the sandbox enforces that policy and knows no plug.
//
// The catalog only describes: it imports nothing of the sandbox, and its
// types are plain data that the agent translates.
package interfaces

import (
	"fmt"
	"sort"
	"sync"
)

// Interface is what a connected plug of one interface gives a command.
type Interface struct {
	// Name is the plug's name in app.yaml.
	Name string
	// Summary says in a few words what the interface allows.
	Summary string
	// AutoConnect connects the plug as soon as an app declares it. The
	// others need a hardware slot of the gadget and a connection.
	AutoConnect bool

	// HostNetwork keeps the host's network namespace.
	HostNetwork bool
	// Mounts are host directories shown read-only in the sandbox.
	Mounts []Mount
	// Devices are added to the device cgroup's allowlist.
	Devices []Device
	// Syscalls are allowed beyond the default seccomp allowlist.
	Syscalls []string
	// AppArmor are rules added to the command's profile.
	AppArmor []string

	// Denials describes the denials this interface would have allowed.
	Denials Denials
}

// Mount shows the host directory Source at Target, read-only.
type Mount struct{ Source, Target string }

// Device is a device cgroup entry: Type "c" or "b", Minor -1 for every minor.
type Device struct {
	Type         string
	Major, Minor int64
	Access       string
}

// Denials matches the kernel's denials that an interface would allow.
type Denials struct {
	// Syscalls are system calls that seccomp denied.
	Syscalls []string
	// Capabilities are capabilities AppArmor denied (like net_bind_service).
	Capabilities []string
	// Families are the socket families of AppArmor network denials (inet,
	// inet6); Operations narrows them to some operations (bind, listen).
	Families, Operations []string
	// Paths are path.Match patterns of denied files; a trailing "/" matches
	// everything below the directories the pattern matches.
	Paths []string
}

var (
	mu      sync.Mutex
	catalog = map[string]*Interface{}
)

// register adds i to the catalog; each interface's file calls it from init.
func register(i *Interface) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := catalog[i.Name]; dup {
		panic(fmt.Sprintf("internal error: interface %s registered twice", i.Name))
	}
	catalog[i.Name] = i
}

// Lookup returns the interface named name, or false when the catalog has
// none: a plug of an unknown interface gives nothing.
func Lookup(name string) (*Interface, bool) {
	mu.Lock()
	defer mu.Unlock()
	i, ok := catalog[name]
	return i, ok
}

// All returns every interface, sorted by name.
func All() []*Interface {
	mu.Lock()
	defer mu.Unlock()
	out := make([]*Interface, 0, len(catalog))
	for _, i := range catalog {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}
