package profiles

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/names"
)

// Policy is the resolved confinement of one command of one app revision:
// everything its sandbox enforces, worked out by the agent from what the
// app declares and the interface catalog when it installs or refreshes the
// app (and when a connection changes). The launcher reads it and enforces
// it; it knows no plug and reads nothing of the package. The agent keeps it next to the
// compiled profiles, readable by root only (see SavePolicy).
type Policy struct {
	App      string `json:"app"`
	Command  string `json:"command"`
	Revision int    `json:"revision"`
	// Plugs are the interfaces the policy was resolved from, for people
	// reading the file; nothing enforces them by name.
	Plugs []string `json:"plugs,omitempty"`

	// UID and GID are who the command runs as; Root marks the only policy
	// with both 0 (an app granted root).
	UID  int  `json:"uid"`
	GID  int  `json:"gid"`
	Root bool `json:"root,omitempty"`

	// Exec is the command line: its first word a path inside the app's
	// revision, like bin/hello. Env is the environment every launch
	// starts from.
	Exec []string `json:"exec"`
	Env  []string `json:"env"`

	// HostNetwork keeps the host's network namespace; otherwise the
	// sandbox has its own, with only loopback.
	HostNetwork bool `json:"host-network"`
	// Mounts are host directories shown in the sandbox, read-only unless
	// marked Write.
	Mounts []Mount `json:"mounts,omitempty"`
	// Devices is the device cgroup's allowlist.
	Devices []Device `json:"devices"`
	// Seccomp and AppArmor are what the compiled profiles were made from.
	Seccomp  SeccompPolicy  `json:"seccomp"`
	AppArmor AppArmorPolicy `json:"apparmor"`
	// Limits are the command's resource limits.
	Limits Limits `json:"limits"`

	// Connections are the connected plugs the policy was resolved from,
	// with what outlives a launch: the device nodes the app's user is
	// given, and what a disconnect does to running processes. The agent
	// acts on them when a connection changes; the launcher ignores them.
	Connections []Connected `json:"connections,omitempty"`
}

// Connected is one connected plug of a command.
type Connected struct {
	// Plug is the plug's name as the app declares it; Interface its
	// interface; Slot "gadget:SLOT", "APP:SLOT" (content) or "" (a plug
	// connected by itself, without a slot).
	Plug      string `json:"plug"`
	Interface string `json:"interface"`
	Slot      string `json:"slot,omitempty"`
	// Nodes are the device nodes of the slot as paths on the device
	// (/dev/ttyS1; below dirs.Root in tests), whether they exist now or
	// not: the app's user is given access to them (an ACL), and the
	// device cgroup allows those that existed when the policy was
	// resolved (Devices). A node that appears later is granted by
	// resolving the policy again.
	Nodes []string `json:"nodes,omitempty"`
	// Files are host files under /sys (pwm's attributes) the app's user
	// is given write access to, like Nodes.
	Files []string `json:"files,omitempty"`
	// OnDisconnect is what a disconnect does to the command's running
	// processes, which keep open descriptors and a loaded seccomp filter:
	// "" leaves them running, DisconnectStop stops them.
	OnDisconnect string `json:"on-disconnect,omitempty"`
}

// DisconnectStop stops a command's running processes when a plug is
// disconnected (hardware interfaces: an open device stays usable otherwise).
const DisconnectStop = "stop"

// Nodes returns the device nodes of every connected plug of p, sorted and
// without duplicates: those the app's user is given access to.
func (p *Policy) Nodes() []string {
	var out []string
	for _, c := range p.Connections {
		out = append(out, c.Nodes...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// StopsOnDisconnect reports whether disconnecting plug stops the running
// processes of p's command.
func (p *Policy) StopsOnDisconnect(plug string) bool {
	for _, c := range p.Connections {
		if c.Plug == plug && c.OnDisconnect == DisconnectStop {
			return true
		}
	}
	return false
}

// Mount shows the host directory Source at Target in the sandbox, without
// running programs from it: read-only, or read-write when Write is set
// (the content interface's read-write folders, pwm's sysfs chip).
type Mount struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Write  bool   `json:"write,omitempty"`
}

// Device allows access to a device, or to every minor of a major (-1).
type Device struct {
	Type   string `json:"type"` // "c" or "b"
	Major  int64  `json:"major"`
	Minor  int64  `json:"minor"`
	Access string `json:"access"` // a subset of "rwm"
}

// SeccompPolicy says how the command's seccomp program was compiled.
type SeccompPolicy struct {
	// Devmode logs what strict mode would deny, instead of denying it.
	Devmode bool `json:"devmode,omitempty"`
	// Extra are system calls the command's interfaces allow beyond the default set.
	Extra []string `json:"extra,omitempty"`
}

// AppArmorPolicy says how the command's AppArmor profile was generated.
type AppArmorPolicy struct {
	// Complain logs instead of denying (devmode).
	Complain bool `json:"complain,omitempty"`
	// Snippets are rules the command's interfaces add.
	Snippets []string `json:"snippets,omitempty"`
}

// Limits caps the command's resources; zero means no limit.
type Limits struct {
	MemoryMax  int64 `json:"memory-max,omitempty"`
	PidsMax    int64 `json:"pids-max,omitempty"`
	CPUPercent int   `json:"cpu-percent,omitempty"`
}

// maxPolicy bounds a policy file when it is read back.
const maxPolicy = 16 << 10

// ErrNoPolicy is wrapped by LoadPolicy when the revision has no policy for
// the command.
var ErrNoPolicy = errors.New("no policy")

// PolicyPath is where the agent keeps the policy of a command.
func PolicyPath(app string, rev int, cmd string) string {
	return filepath.Join(Dir(app, rev), cmd+".policy")
}

// Encode returns the policy file's bytes: the same policy always gives the
// same bytes, so that an unchanged policy never rewrites flash, and its
// digest names it.
func (p *Policy) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: policy of %s: %w", Label(p.App, p.Command), err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("internal error: cannot encode the policy of %s: %w", Label(p.App, p.Command), err)
	}
	data = append(data, '\n')
	if len(data) > maxPolicy {
		return nil, fmt.Errorf("cannot keep the policy of %s: it is %d bytes, more than %d (too many plugs or too long an environment)", Label(p.App, p.Command), len(data), maxPolicy)
	}
	return data, nil
}

// Digest names the policy whose file holds data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// SavePolicy keeps p, readable by root only.
func SavePolicy(p *Policy) error {
	data, err := p.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(Dir(p.App, p.Revision), 0o755); err != nil {
		return fmt.Errorf("cannot keep the policy of %s: %w", Label(p.App, p.Command), err)
	}
	return atomicfile.WriteFile(PolicyPath(p.App, p.Revision, p.Command), data, 0o600)
}

// LoadPolicy returns the policy of command cmd of revision rev of app, and
// the bytes of its file.
func LoadPolicy(app string, rev int, cmd string) (*Policy, []byte, error) {
	path := PolicyPath(app, rev, cmd)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w for %s in revision %d", ErrNoPolicy, Label(app, cmd), rev)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the policy of %s: %w", Label(app, cmd), err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicy+1))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the policy of %s: %w", Label(app, cmd), err)
	}
	p, err := parsePolicy(data, app, rev, cmd)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w (start the agent, which writes it again)", path, err)
	}
	return p, data, nil
}

// parsePolicy decodes and checks the policy file data of command cmd of
// revision rev of app. Its errors never quote the file.
func parsePolicy(data []byte, app string, rev int, cmd string) (*Policy, error) {
	if len(data) > maxPolicy {
		return nil, fmt.Errorf("larger than %d bytes", maxPolicy)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, errors.New("not a policy")
	}
	if dec.More() {
		return nil, errors.New("not a policy: more after it")
	}
	if p.App != app || p.Command != cmd || p.Revision != rev {
		return nil, fmt.Errorf("it is the policy of %s revision %d", Label(p.App, p.Command), p.Revision)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// PolicyCommands lists the commands of revision rev of app that have a
// policy, sorted.
func PolicyCommands(app string, rev int) []string {
	paths, _ := filepath.Glob(filepath.Join(Dir(app, rev), "*.policy"))
	var out []string
	for _, p := range paths {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".policy"))
	}
	sort.Strings(out)
	return out
}

// Validate reports what in p the sandbox could not enforce as meant: a
// zero user that is not root, a command outside the revision, a mount
// that is not a clean absolute path, a device that is not one.
func (p *Policy) Validate() error {
	if !names.Valid(p.App) || !names.Valid(p.Command) || p.Revision <= 0 {
		return fmt.Errorf("invalid app %q, command %q or revision %d", p.App, p.Command, p.Revision)
	}
	switch {
	case p.Root && (p.UID != 0 || p.GID != 0):
		return fmt.Errorf("root with uid %d and gid %d", p.UID, p.GID)
	case !p.Root && (p.UID <= 0 || p.GID <= 0):
		return fmt.Errorf("uid %d and gid %d, not an app's own user", p.UID, p.GID)
	}
	if len(p.Exec) == 0 || p.Exec[0] == "" || path.IsAbs(p.Exec[0]) || !filepath.IsLocal(p.Exec[0]) {
		return fmt.Errorf("command line %q does not start with a path inside the app", p.Exec)
	}
	for _, m := range p.Mounts {
		for _, d := range []string{m.Source, m.Target} {
			if !path.IsAbs(d) || path.Clean(d) != d || d == "/" {
				return fmt.Errorf("mount %s on %s: not a clean absolute path below /", m.Source, m.Target)
			}
		}
	}
	if _, err := p.CgroupSpec(); err != nil {
		return err
	}
	for _, c := range p.Connections {
		for _, n := range c.Nodes {
			if !strings.HasPrefix(n, "/dev/") || path.Clean(n) != n {
				return fmt.Errorf("plug %s: node %q is not a clean path under /dev/", c.Plug, n)
			}
		}
		for _, f := range c.Files {
			if !strings.HasPrefix(f, "/sys/") || path.Clean(f) != f {
				return fmt.Errorf("plug %s: file %q is not a clean path under /sys/", c.Plug, f)
			}
		}
		if c.OnDisconnect != "" && c.OnDisconnect != DisconnectStop {
			return fmt.Errorf("plug %s: unknown disconnect action %q", c.Plug, c.OnDisconnect)
		}
	}
	return nil
}

// CgroupSpec is the device allowlist and limits of p, as the cgroup package takes them.
func (p *Policy) CgroupSpec() (cgroup.Spec, error) {
	s := cgroup.Spec{MemoryMax: p.Limits.MemoryMax, PidsMax: p.Limits.PidsMax, CPUPercent: p.Limits.CPUPercent}
	for _, d := range p.Devices {
		if len(d.Type) != 1 || d.Type != "c" && d.Type != "b" {
			return cgroup.Spec{}, fmt.Errorf("device type %q is not c or b", d.Type)
		}
		s.Devices = append(s.Devices, cgroup.DeviceRule{Type: rune(d.Type[0]), Major: d.Major, Minor: d.Minor, Access: d.Access})
	}
	if err := s.Validate(); err != nil {
		return cgroup.Spec{}, err
	}
	return s, nil
}

// DefaultDevices is the device allowlist of every command, as policy entries.
func DefaultDevices() []Device {
	var out []Device
	for _, r := range cgroup.DefaultDevices() {
		out = append(out, Device{Type: string(r.Type), Major: r.Major, Minor: r.Minor, Access: r.Access})
	}
	return out
}
