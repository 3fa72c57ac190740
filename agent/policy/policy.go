// Package policy resolves the confinement of app commands: from the
// manifest the agent kept of a revision, the user the revision runs as and
// the interface catalog (gadget/interfaces), it computes each command's
// policy, which confine/profiles compiles and keeps and the launcher
// enforces. It is the one place where plugs meet the sandbox.
package policy

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/ota/manifest"
)

// ErrClassic is returned for an app of classic confinement, which this
// agent cannot run: its launcher has no classic mode yet.
var ErrClassic = errors.New("classic confinement is not supported yet by this agent (build the app with confinement: strict or devmode)")

// Resolve returns the policy of every command of revision rev of the app
// described by m, run as user, sorted by command, with the app's connected
// plugs conns (AutoConnections(m) for an app whose connections nobody
// changed). A connection counts for the commands that have its plug; a
// hardware slot's device nodes are read (major:minor) now, and one absent
// now is still listed in the policy's connections, to be granted by
// resolving again when it appears.
func Resolve(m *manifest.Manifest, rev int, user launch.User, conns []Connection) ([]*profiles.Policy, error) {
	var out []*profiles.Policy
	for _, cmd := range Commands(m) {
		p, err := resolveCommand(m, rev, cmd, user, conns)
		if err != nil {
			return nil, fmt.Errorf("cannot resolve the policy of %s: %w", profiles.Label(m.Name, cmd), err)
		}
		if _, err := p.Encode(); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func resolveCommand(m *manifest.Manifest, rev int, cmd string, user launch.User, conns []Connection) (*profiles.Policy, error) {
	if m.Confinement == manifest.Classic {
		return nil, ErrClassic
	}
	app := m.Apps[cmd]
	if h := m.HookOf(cmd); h != nil {
		app = &manifest.App{Command: h.Command} // a hook: no limits, its own plugs
	}
	devmode := m.Confinement == manifest.Devmode
	p := &profiles.Policy{
		App: m.Name, Command: cmd, Revision: rev,
		UID: user.UID, GID: user.GID, Root: user.Root,
		Exec:     strings.Fields(app.Command),
		Env:      environment(m, rev, cmd),
		Devices:  profiles.DefaultDevices(),
		Seccomp:  profiles.SeccompPolicy{Devmode: devmode},
		AppArmor: profiles.AppArmorPolicy{Complain: devmode},
		Limits:   profiles.Limits{MemoryMax: app.Limits.Memory, PidsMax: int64(app.Limits.Pids), CPUPercent: app.Limits.CPUPercent},
	}
	plugs := plugsOf(m, cmd)
	for _, c := range sortedConnections(conns) {
		i := slices.IndexFunc(plugs, func(pl plug) bool { return pl.name == c.Plug })
		if i < 0 {
			continue // a plug of another command
		}
		if err := connect(p, plugs[i], c); err != nil {
			return nil, err
		}
	}
	slices.Sort(p.Seccomp.Extra)
	p.Seccomp.Extra = slices.Compact(p.Seccomp.Extra)
	// A mount below another one comes after it.
	sort.SliceStable(p.Mounts, func(a, b int) bool { return p.Mounts[a].Target < p.Mounts[b].Target })
	return p, nil
}

// sortedConnections orders conns by plug, so that the same connections in
// any order give the same policy bytes.
func sortedConnections(conns []Connection) []Connection {
	out := slices.Clone(conns)
	sort.SliceStable(out, func(a, b int) bool { return out[a].Plug < out[b].Plug })
	return out
}

// add gives p what interface i brings.
func add(p *profiles.Policy, i *interfaces.Interface) {
	p.Plugs = appendNew(p.Plugs, i.Name)
	p.HostNetwork = p.HostNetwork || i.HostNetwork
	for _, mt := range i.Mounts {
		m := profiles.Mount{Source: mt.Source, Target: mt.Target, Write: mt.Write}
		if !slices.Contains(p.Mounts, m) {
			p.Mounts = append(p.Mounts, m)
		}
	}
	for _, d := range i.Devices {
		dev := profiles.Device{Type: d.Type, Major: d.Major, Minor: d.Minor, Access: d.Access}
		if !slices.Contains(p.Devices, dev) {
			p.Devices = append(p.Devices, dev)
		}
	}
	p.Seccomp.Extra = append(p.Seccomp.Extra, i.Syscalls...)
	for _, rule := range i.AppArmor {
		if !slices.Contains(p.AppArmor.Snippets, rule) {
			p.AppArmor.Snippets = append(p.AppArmor.Snippets, rule)
		}
	}
}

// environment is what a command's environment starts from: what tells the
// app where it is. The launcher adds the caller's terminal and locale.
func environment(m *manifest.Manifest, rev int, cmd string) []string {
	r := strconv.Itoa(rev)
	appDir := filepath.Join(profiles.SandboxAppsDir, m.Name, r)
	dataDir := filepath.Join(profiles.SandboxDataDir, m.Name, r)
	return []string{
		"APP=" + appDir,
		"APP_NAME=" + m.Name,
		"APP_COMMAND=" + cmd,
		"APP_REVISION=" + r,
		"APP_VERSION=" + m.Version,
		"APP_ARCH=" + arch.Native(),
		"APP_DATA=" + dataDir,
		"APP_COMMON=" + filepath.Join(profiles.SandboxDataDir, m.Name, "common"),
		"APP_LABEL=" + profiles.Label(m.Name, cmd),
		"HOME=" + dataDir,
		"TMPDIR=/tmp",
		"PATH=" + appDir + "/bin:" + appDir + "/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
}

// Generate resolves the policies of revision rev of the app described by
// m, run as the user the agent recorded for it, with its connected plugs
// conns, and compiles and keeps them with their profiles (for the
// architecture arch; "" is this machine's). The agent calls it when it
// installs or refreshes a revision, and when a connection changes.
func Generate(m *manifest.Manifest, rev int, arch string, conns []Connection) error {
	pols, err := resolveRecorded(m, rev, conns)
	if err != nil {
		return err
	}
	return profiles.Generate(pols, profiles.Options{Arch: arch})
}

// Keep resolves the policies of revision rev again, with the connected
// plugs conns, at the agent's start, and keeps those that changed:
// revisions installed by an agent that kept no policies, or whose user it
// recorded again, or whose device nodes changed. Where a policy is new,
// or its seccomp or AppArmor part changed (a catalog that grew with an
// upgrade of the agent), it compiles the command's profiles again too, and
// says so, so that the caller loads the new AppArmor profiles.
func Keep(m *manifest.Manifest, rev int, arch string, conns []Connection) (compiled bool, err error) {
	pols, err := resolveRecorded(m, rev, conns)
	if err != nil {
		return false, err
	}
	var stale []*profiles.Policy
	for _, p := range pols {
		kept, _, err := profiles.LoadPolicy(p.App, p.Revision, p.Command)
		if err != nil || !sameProfiles(kept, p) {
			stale = append(stale, p)
			continue
		}
		if err := profiles.SavePolicy(p); err != nil {
			return false, err
		}
	}
	if len(stale) == 0 {
		return false, nil
	}
	return true, profiles.Generate(stale, profiles.Options{Arch: arch})
}

// sameProfiles reports whether profiles compiled for a were compiled for b too.
func sameProfiles(a, b *profiles.Policy) bool {
	return a.Seccomp.Devmode == b.Seccomp.Devmode && slices.Equal(a.Seccomp.Extra, b.Seccomp.Extra) &&
		a.AppArmor.Complain == b.AppArmor.Complain && slices.Equal(a.AppArmor.Snippets, b.AppArmor.Snippets)
}

func resolveRecorded(m *manifest.Manifest, rev int, conns []Connection) ([]*profiles.Policy, error) {
	user, err := launch.ReadUser(m.Name, rev)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the policy of %s: %w", m.Name, err)
	}
	return Resolve(m, rev, user, conns)
}

// Commands lists the commands of m, sorted, for loading their profiles:
// its apps, and the commands its hooks run as (manifest.HookCommand), each
// with a policy of its own.
func Commands(m *manifest.Manifest) []string {
	var out []string
	for name := range m.Apps {
		out = append(out, name)
	}
	for hook := range m.Hooks {
		out = append(out, manifest.HookCommand(hook))
	}
	sort.Strings(out)
	return out
}
