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
	"regexp"
	"slices"
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

	// Notes say, for 'paddock interfaces', what a connection grants beyond
	// the summary, and its limits.
	Notes string
	// OnDisconnect is what a disconnect does to the plug's running
	// processes, which keep open descriptors and a loaded seccomp filter:
	// "" leaves them running, Stop stops them.
	OnDisconnect string

	// Slot describes the gadget slots of a hardware interface and what a
	// connection to one grants; nil for an interface without gadget slots.
	Slot *SlotKind
	// Share is set for an interface whose slots are in apps' app.yaml: a
	// folder of the providing app's data shown to the consuming app
	// (content). It returns what a connection grants.
	Share func(Share) Grant
}

// Stop is the OnDisconnect that stops the plug's running processes.
const Stop = "stop"

// Mount shows the host directory Source at Target, read-only unless Write.
type Mount struct {
	Source, Target string
	Write          bool
}

// SlotKind is what a gadget slot of a hardware interface holds.
type SlotKind struct {
	// Attrs are the attributes a slot needs, all of them; OneOf lists
	// alternatives, of which a slot needs at least one (and Attrs may
	// then be empty); Optional are attributes it may have besides.
	Attrs, OneOf, Optional []string
	// Nodes matches the device paths the path attribute may name, and
	// Example is one of them.
	Nodes   *regexp.Regexp
	Example string
	// Grant returns what a connection to slot s grants, given its
	// attributes and the device nodes matched to it now (for a slot
	// matched by USB properties, those of the plugged devices).
	Grant func(s SlotAttrs, matched []string) Grant
}

// SlotAttrs are the attributes of a gadget slot. Which are set depends on
// the interface (see each interface's SlotKind).
type SlotAttrs struct {
	// Path is the device node (serial-port, i2c, spi), or a
	// /dev/serial/by-id or by-path link.
	Path string `json:"path,omitempty"`
	// Paths are the device nodes of a custom-device slot.
	Paths []string `json:"paths,omitempty"`
	// Chip and Number name a chip and a line or channel of it (gpio:
	// /dev/gpiochipCHIP and line NUMBER; pwm: pwmchipCHIP, channel NUMBER).
	Chip   *int `json:"chip,omitempty"`
	Number *int `json:"number,omitempty"`
	// USBVendor, USBProduct and USBSerial match a USB device by its
	// properties (hexadecimal vendor and product ids, serial string).
	USBVendor  string `json:"usb-vendor,omitempty"`
	USBProduct string `json:"usb-product,omitempty"`
	USBSerial  string `json:"usb-serial,omitempty"`
}

// Share is a folder of one app's data given to another: Source on the
// host, Target in the consumer's sandbox, read-write when Write.
type Share struct {
	Source, Target string
	Write          bool
}

// Grant is what a connection to one slot adds to a command's policy.
type Grant struct {
	// Nodes are device nodes: the device cgroup allows each (its major
	// and minor read from the node when the policy is resolved), the
	// AppArmor profile allows reading and writing it, and the app's user
	// is given access to it.
	Nodes []string
	// Mounts are shown in the sandbox; a source that does not exist when
	// the policy is resolved is left out until it does.
	Mounts []Mount
	// AppArmor are rules added to the command's profile.
	AppArmor []string
	// Files are host files (sysfs attributes) the app's user is given
	// write access to.
	Files []string
}

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

// nodes returns the slot's own node (if any) and the nodes matched to it,
// without duplicates.
func nodes(own string, matched []string) []string {
	var out []string
	for _, n := range append([]string{own}, matched...) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
