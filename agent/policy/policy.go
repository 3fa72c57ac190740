// Package policy resolves the confinement of app commands: from the
// manifest the agent kept of a revision, the user the revision runs as and
// the interface catalog (gadget/interfaces), it computes each command's
// policy, which confine/profiles compiles and keeps and the launcher
// enforces. It is the one place where plugs meet the sandbox.
package policy

import (
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

// Resolve returns the policy of every command of revision rev of the app
// described by m, run as user, sorted by command.
func Resolve(m *manifest.Manifest, rev int, user launch.User) ([]*profiles.Policy, error) {
	var cmds []string
	for name := range m.Apps {
		cmds = append(cmds, name)
	}
	sort.Strings(cmds)
	var out []*profiles.Policy
	for _, cmd := range cmds {
		p := resolveCommand(m, rev, cmd, user)
		if _, err := p.Encode(); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func resolveCommand(m *manifest.Manifest, rev int, cmd string, user launch.User) *profiles.Policy {
	app := m.Apps[cmd]
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
	for _, plug := range app.Plugs {
		i, ok := interfaces.Lookup(plug)
		if !ok || !i.AutoConnect {
			continue // unknown, or waiting for a hardware slot and a connection
		}
		add(p, i)
	}
	slices.Sort(p.Seccomp.Extra)
	p.Seccomp.Extra = slices.Compact(p.Seccomp.Extra)
	return p
}

// add gives p what interface i brings.
func add(p *profiles.Policy, i *interfaces.Interface) {
	p.Plugs = append(p.Plugs, i.Name)
	p.HostNetwork = p.HostNetwork || i.HostNetwork
	for _, mt := range i.Mounts {
		m := profiles.Mount{Source: mt.Source, Target: mt.Target}
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
// m, run as the user the agent recorded for it, and compiles and keeps
// them with their profiles (for the architecture arch; "" is this
// machine's). The agent calls it when it installs or refreshes a revision.
func Generate(m *manifest.Manifest, rev int, arch string) error {
	pols, err := resolveRecorded(m, rev)
	if err != nil {
		return err
	}
	return profiles.Generate(pols, profiles.Options{Arch: arch})
}

// Keep resolves the policies of revision rev again, at the agent's start,
// and keeps those that changed: revisions installed by an agent that kept
// no policies, or whose user it recorded again. Where a policy is new, or
// its seccomp or AppArmor part changed (a catalog that grew with an
// upgrade of the agent), it compiles the command's profiles again too, and
// says so, so that the caller loads the new AppArmor profiles.
func Keep(m *manifest.Manifest, rev int, arch string) (compiled bool, err error) {
	pols, err := resolveRecorded(m, rev)
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

func resolveRecorded(m *manifest.Manifest, rev int) ([]*profiles.Policy, error) {
	user, err := launch.ReadUser(m.Name, rev)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the policy of %s: %w", m.Name, err)
	}
	return Resolve(m, rev, user)
}

// Commands lists the commands of m, sorted, for loading their profiles.
func Commands(m *manifest.Manifest) []string {
	var out []string
	for name := range m.Apps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
