package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/names"
	"paddock.dev/paddock/ota/revisions"
)

// isMounted reports whether a revision is mounted; tests replace it.
var isMounted = revisions.IsMounted

// Resolve describes how to run command cmd of the current revision of app
// name with args: it reads the command's policy, which the agent resolved
// when it installed the revision (or changed a connection), and its
// precompiled seccomp profile, and enforces nothing else. cmd "" means the
// command named like the app.
func Resolve(name, cmd string, args []string) (*Spec, error) {
	if err := names.Check("app", name); err != nil {
		return nil, err
	}
	if cmd == "" {
		cmd = name
	}
	if err := names.Check("command", cmd); err != nil {
		return nil, err
	}
	target, err := os.Readlink(dirs.AppDir(name, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not installed (see 'paddock list')", name)
	}
	if err != nil {
		return nil, err
	}
	rev, err := strconv.Atoi(target)
	if err != nil {
		return nil, fmt.Errorf("current revision of %s is %q, not a number", name, target)
	}
	if !isMounted(name, rev) {
		return nil, fmt.Errorf("%s revision %d is not mounted (the agent mounts it when it starts: is it running?)", name, rev)
	}
	p, raw, err := profiles.LoadPolicy(name, rev, cmd)
	if errors.Is(err, profiles.ErrNoPolicy) {
		if have := profiles.PolicyCommands(name, rev); len(have) > 0 {
			return nil, fmt.Errorf("%s has no command %q (it has: %s)", name, cmd, strings.Join(have, ", "))
		}
		return nil, fmt.Errorf("cannot find the policy of %s revision %d (start the agent, which writes it)", name, rev)
	}
	if err != nil {
		return nil, err
	}
	return specFor(p, raw, target, args)
}

// specFor turns the policy p, read from the bytes raw, into the spec of a
// launch of revision dir rev with the caller's args.
func specFor(p *profiles.Policy, raw []byte, rev string, args []string) (*Spec, error) {
	name, cmd := p.App, p.Command
	label := profiles.Label(name, cmd)
	seccompPath := profiles.SeccompPath(name, p.Revision, cmd)
	prog, err := os.ReadFile(seccompPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read the seccomp profile of %s: %w (reinstall the app to generate it)", label, err)
	}
	cg, err := p.CgroupSpec()
	if err != nil {
		return nil, err
	}
	s := &Spec{
		App: name, Command: cmd, Revision: p.Revision, Label: label,
		Scratch:       filepath.Join(dirs.RunDir, "paddock", "root"),
		HostAppDir:    dirs.AppDir(name, rev),
		AppDir:        filepath.Join(profiles.SandboxAppsDir, name, rev),
		HostDataDir:   dirs.AppDataDir(name, rev),
		DataDir:       filepath.Join(profiles.SandboxDataDir, name, rev),
		HostCommonDir: dirs.AppDataDir(name, "common"),
		CommonDir:     filepath.Join(profiles.SandboxDataDir, name, "common"),
		UID:           p.UID,
		GID:           p.GID,
		Network:       p.HostNetwork,
		Mounts:        p.Mounts,
		Seccomp:       prog,
		SeccompPath:   seccompPath,
		AppArmor:      appArmorFor(label),
		Cgroup:        cg,
		Policy:        raw,
		PolicyPath:    profiles.PolicyPath(name, p.Revision, cmd),
		HostCtlDir:    dirs.CtlSocketDir,
	}
	s.Argv = append([]string{filepath.Join(s.AppDir, p.Exec[0])}, append(p.Exec[1:], args...)...)
	s.BaseArgc = len(p.Exec)
	s.Env = environment(p.Env)
	if err := os.MkdirAll(s.Scratch, 0o755); err != nil {
		return nil, err
	}
	return s, nil
}

// environment is the app's whole environment: the policy's, which tells
// it where it is, plus the caller's terminal and locale settings.
func environment(base []string) []string {
	env := append([]string(nil), base...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "TERM" || k == "LANG" || k == "TZ" || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// appArmorFor reports whether launches of label enter its AppArmor profile:
// where the kernel has AppArmor and the agent loaded the profile. Otherwise
// the launcher says once (per boot) that AppArmor does not confine apps,
// and goes on with the other layers.
func appArmorFor(label string) bool {
	if apparmor.Enabled() && apparmor.Loaded(label) {
		return true
	}
	reason := "the kernel has no AppArmor"
	if apparmor.Enabled() {
		reason = "the profile " + label + " is not loaded (the agent loads it; is apparmor_parser in the base?)"
	}
	marker := filepath.Join(dirs.RunDir, "paddock", "apparmor-warned")
	if _, err := os.Stat(marker); err != nil {
		fmt.Fprintf(os.Stderr, "warning: AppArmor does not confine apps here: %s; namespaces, seccomp and the device cgroup still do\n", reason)
		os.MkdirAll(filepath.Dir(marker), 0o755)
		os.WriteFile(marker, nil, 0o644)
	}
	return false
}

// probeSpec makes s, the spec of a command, run the command's health check
// command instead (from the manifest the agent kept of the revision), in
// the same sandbox.
func probeSpec(s *Spec) error {
	m, err := revisions.LoadManifest(s.App, s.Revision)
	if err != nil {
		return err
	}
	a := m.Apps[s.Command]
	if a == nil || a.Health == nil || a.Health.Command == "" {
		return fmt.Errorf("%s.%s has no health check command", s.App, s.Command)
	}
	exec := strings.Fields(a.Health.Command)
	s.Argv = append([]string{filepath.Join(s.AppDir, exec[0])}, exec[1:]...)
	s.BaseArgc = len(exec)
	s.OneOff = true
	return nil
}
