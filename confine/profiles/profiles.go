// Package profiles generates, stores and loads the security profiles of app
// commands: the seccomp program and the AppArmor profile of each command of
// each revision, compiled ahead of time (at install) under
// /var/lib/paddock/profiles/APP/REV/, so that a launch only loads them.
package profiles

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/seccomp"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
)

// Label is the security label of command cmd of app: paddock.APP.CMD.
func Label(app, cmd string) string { return "paddock." + app + "." + cmd }

// Dir holds the profiles of revision rev of app.
func Dir(app string, rev int) string {
	return filepath.Join(dirs.ProfilesDir, app, strconv.Itoa(rev))
}

// SeccompPath is the compiled seccomp program of a command.
func SeccompPath(app string, rev int, cmd string) string {
	return filepath.Join(Dir(app, rev), cmd+".bpf")
}

// AppArmorPath is the AppArmor profile source of a command.
func AppArmorPath(app string, rev int, cmd string) string {
	return filepath.Join(Dir(app, rev), cmd+".apparmor")
}

// HasNetwork reports whether plugs keep the host's network: any plug of the
// network family (network, network-bind, ...).
func HasNetwork(plugs []string) bool {
	for _, p := range plugs {
		if p == "network" || strings.HasPrefix(p, "network-") {
			return true
		}
	}
	return false
}

// Options tune Generate.
type Options struct {
	// Arch is the Debian architecture the profiles are for; empty means this machine's.
	Arch string
}

// Generate writes the profiles of every command of revision rev of the app
// described by m. Each AppArmor profile is checked with apparmor_parser when
// it is installed, even on kernels without AppArmor. Running it again gives
// the same files.
func Generate(rev int, m *manifest.Manifest, opts Options) error {
	if err := os.MkdirAll(Dir(m.Name, rev), 0o755); err != nil {
		return fmt.Errorf("cannot create profiles of %s: %w", m.Name, err)
	}
	mode := seccomp.Strict
	if m.Confinement == manifest.Devmode {
		mode = seccomp.Devmode
	}
	for _, cmd := range commands(m) {
		prog, err := seccomp.Compile(seccomp.Policy{Arch: opts.Arch, Mode: mode})
		if err != nil {
			return fmt.Errorf("cannot compile the seccomp profile of %s: %w", Label(m.Name, cmd), err)
		}
		if err := seccomp.WriteProfile(SeccompPath(m.Name, rev, cmd), prog); err != nil {
			return err
		}
		text, err := apparmorProfile(m, rev, cmd)
		if err != nil {
			return err
		}
		if hasParser() {
			if err := apparmor.Check(text); err != nil {
				return fmt.Errorf("internal error: generated AppArmor profile of %s: %w", Label(m.Name, cmd), err)
			}
		}
		if err := atomicfile.WriteFile(AppArmorPath(m.Name, rev, cmd), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func apparmorProfile(m *manifest.Manifest, rev int, cmd string) (string, error) {
	r := strconv.Itoa(rev)
	return apparmor.Generate(apparmor.Profile{
		Label:     Label(m.Name, cmd),
		AppDir:    filepath.Join("/apps", m.Name, r),
		DataDir:   filepath.Join(apparmor.DataRoot, m.Name, r),
		CommonDir: filepath.Join(apparmor.DataRoot, m.Name, "common"),
		Complain:  m.Confinement == manifest.Devmode,
	})
}

// LoadAppArmor compiles and loads the AppArmor profiles of revision rev of
// the app into the kernel, replacing those of another revision. On a kernel
// without AppArmor it does nothing.
func LoadAppArmor(rev int, m *manifest.Manifest) error {
	if !apparmor.Enabled() {
		return nil
	}
	for _, cmd := range commands(m) {
		text, err := os.ReadFile(AppArmorPath(m.Name, rev, cmd))
		if err != nil {
			return fmt.Errorf("cannot load the AppArmor profile of %s: %w", Label(m.Name, cmd), err)
		}
		bin, err := compiledAppArmor(m.Name, rev, cmd, text)
		if err != nil {
			return err
		}
		if err := apparmor.Load(bin); err != nil {
			return fmt.Errorf("cannot load the AppArmor profile of %s: %w", Label(m.Name, cmd), err)
		}
	}
	return nil
}

// compiledAppArmor returns the binary policy of a command's profile: the
// one compiled for this kernel at an earlier start, or a new compilation
// that is kept for the next, so that a boot does not run apparmor_parser
// for every app again. The kernel's release keys the cache: its feature
// set decides what the parser emits.
func compiledAppArmor(app string, rev int, cmd string, text []byte) ([]byte, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, os.NewSyscallError("uname", err)
	}
	cache := AppArmorPath(app, rev, cmd) + "." + unix.ByteSliceToString(uts.Release[:]) + ".bin"
	if bin, err := os.ReadFile(cache); err == nil && len(bin) > 0 {
		return bin, nil
	}
	bin, err := apparmor.Compile(string(text), "")
	if err != nil {
		return nil, err
	}
	// A cache that cannot be written only costs the next start a compilation.
	atomicfile.WriteFile(cache, bin, 0o644)
	return bin, nil
}

// Remove deletes the profiles of revision rev of app.
func Remove(app string, rev int) error {
	if err := os.RemoveAll(Dir(app, rev)); err != nil {
		return fmt.Errorf("cannot remove profiles of %s: %w", app, err)
	}
	// The app's directory goes with its last revision.
	err := os.Remove(filepath.Dir(Dir(app, rev)))
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("cannot remove profiles of %s: %w", app, err)
	}
	return nil
}

// commands lists the app's commands, sorted.
func commands(m *manifest.Manifest) []string {
	var out []string
	for name := range m.Apps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

var hasParser = func() bool {
	_, err := exec.LookPath("apparmor_parser")
	return err == nil
}
