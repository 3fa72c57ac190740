package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// Where apps see themselves, whatever the root directory on the host.
const (
	sandboxAppsDir = "/apps"
	sandboxDataDir = "/var/lib/paddock/data"
)

// isMounted reports whether a revision is mounted; tests replace it.
var isMounted = revisions.IsMounted

// Resolve describes how to run command cmd of the current revision of app
// name with args: it reads the manifest that the agent kept when it
// installed the revision (never the package's own app.yaml) and its
// precompiled seccomp profile. cmd "" means the command named like the app.
func Resolve(name, cmd string, args []string) (*Spec, error) {
	if err := manifest.CheckName("app", name); err != nil {
		return nil, err
	}
	if cmd == "" {
		cmd = name
	}
	if err := manifest.CheckName("command", cmd); err != nil {
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
	hostApp := dirs.AppDir(name, target)
	if !isMounted(name, rev) {
		return nil, fmt.Errorf("%s revision %d is not mounted (the agent mounts it when it starts: is it running?)", name, rev)
	}
	m, err := profiles.LoadManifest(name, rev)
	if err != nil {
		return nil, err
	}
	app := m.Apps[cmd]
	if app == nil {
		return nil, fmt.Errorf("%s has no command %q (it has: %s)", name, cmd, commandList(m))
	}
	label := profiles.Label(name, cmd)
	seccompPath := profiles.SeccompPath(name, rev, cmd)
	prog, err := os.ReadFile(seccompPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read the seccomp profile of %s: %w (reinstall the app to generate it)", label, err)
	}
	s := &Spec{
		App: name, Command: cmd, Revision: rev, Label: label,
		Scratch:       filepath.Join(dirs.RunDir, "paddock", "root"),
		HostAppDir:    hostApp,
		AppDir:        filepath.Join(sandboxAppsDir, name, target),
		HostDataDir:   dirs.AppDataDir(name, target),
		DataDir:       filepath.Join(sandboxDataDir, name, target),
		HostCommonDir: dirs.AppDataDir(name, "common"),
		CommonDir:     filepath.Join(sandboxDataDir, name, "common"),
		Network:       profiles.HasNetwork(app.Plugs),
		Sys:           slices.Contains(app.Plugs, "hardware-observe"),
		Seccomp:       prog,
		SeccompPath:   seccompPath,
		AppArmor:      appArmorFor(label),
		Cgroup: cgroup.Spec{
			Devices:    cgroup.DefaultDevices(),
			MemoryMax:  app.Limits.Memory,
			PidsMax:    int64(app.Limits.Pids),
			CPUPercent: app.Limits.CPUPercent,
		},
	}
	user, err := ReadUser(name, rev)
	if err != nil {
		return nil, err
	}
	s.UID, s.GID = user.UID, user.GID
	words := strings.Fields(app.Command)
	s.Argv = append([]string{filepath.Join(s.AppDir, words[0])}, append(words[1:], args...)...)
	s.BaseArgc = len(words)
	s.Env = environment(s, m)
	if err := os.MkdirAll(s.Scratch, 0o755); err != nil {
		return nil, err
	}
	return s, nil
}

// environment is the app's whole environment: what tells it where it is,
// plus the caller's terminal and locale settings.
func environment(s *Spec, m *manifest.Manifest) []string {
	env := []string{
		"APP=" + s.AppDir,
		"APP_NAME=" + s.App,
		"APP_COMMAND=" + s.Command,
		"APP_REVISION=" + strconv.Itoa(s.Revision),
		"APP_VERSION=" + m.Version,
		"APP_ARCH=" + arch.Native(),
		"APP_DATA=" + s.DataDir,
		"APP_COMMON=" + s.CommonDir,
		"APP_LABEL=" + s.Label,
		"HOME=" + s.DataDir,
		"TMPDIR=/tmp",
		"PATH=" + s.AppDir + "/bin:" + s.AppDir + "/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "TERM" || k == "LANG" || k == "TZ" || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

func commandList(m *manifest.Manifest) string {
	var names []string
	for n := range m.Apps {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
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
