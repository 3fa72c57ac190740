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
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/seccomp"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
)

// Where apps see themselves in their sandbox, whatever the root directory
// on the host: their revision under SandboxAppsDir/APP/REV, their data
// under SandboxDataDir/APP/REV and SandboxDataDir/APP/common.
const (
	SandboxAppsDir = "/apps"
	SandboxDataDir = apparmor.DataRoot
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

// Options tune Generate.
type Options struct {
	// Arch is the Debian architecture the profiles are for; empty means this machine's.
	Arch string
}

// Generate compiles the profiles of every policy, the commands of one
// app revision: the seccomp program from its seccomp additions and the
// AppArmor profile from its snippets, then keeps the policy itself, last,
// so that a launch never finds a policy newer than its profiles. Each
// AppArmor profile is checked with apparmor_parser when it is installed,
// even on kernels without AppArmor. Running it again gives the same files.
func Generate(pols []*Policy, opts Options) error {
	for _, p := range pols {
		if err := generate(p, opts); err != nil {
			return err
		}
	}
	return nil
}

func generate(p *Policy, opts Options) error {
	label := Label(p.App, p.Command)
	if _, err := p.Encode(); err != nil {
		return err
	}
	if err := os.MkdirAll(Dir(p.App, p.Revision), 0o755); err != nil {
		return fmt.Errorf("cannot create profiles of %s: %w", p.App, err)
	}
	mode := seccomp.Strict
	if p.Seccomp.Devmode {
		mode = seccomp.Devmode
	}
	prog, err := seccomp.Compile(seccomp.Policy{Arch: opts.Arch, Mode: mode, Extra: p.Seccomp.Extra})
	if err != nil {
		return fmt.Errorf("cannot compile the seccomp profile of %s: %w", label, err)
	}
	if err := seccomp.WriteProfile(SeccompPath(p.App, p.Revision, p.Command), prog); err != nil {
		return err
	}
	text, err := apparmorProfile(p)
	if err != nil {
		return err
	}
	// The profile is checked by compiling it: for this kernel where it has
	// AppArmor (LoadAppArmor then loads that compilation, without running
	// apparmor_parser again: a connect on a slow board pays one run), else
	// against the feature set the package carries.
	var bin []byte
	if hasParser() {
		if apparmor.Enabled() {
			bin, err = apparmor.Compile(text, "")
		} else {
			err = apparmor.Check(text)
		}
		if err != nil {
			return fmt.Errorf("internal error: generated AppArmor profile of %s: %w", label, err)
		}
	}
	aaPath := AppArmorPath(p.App, p.Revision, p.Command)
	if old, err := os.ReadFile(aaPath); err == nil && string(old) != text {
		// The binaries compiled from the old text must not be loaded for the new.
		stale, _ := filepath.Glob(aaPath + ".*.bin")
		for _, f := range stale {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("cannot replace the AppArmor profile of %s: %w", label, err)
			}
		}
	}
	if err := atomicfile.WriteFile(aaPath, []byte(text), 0o644); err != nil {
		return err
	}
	if len(bin) > 0 {
		if cache, err := compiledPath(p.App, p.Revision, p.Command); err == nil {
			// A cache that cannot be written only costs the load a compilation.
			atomicfile.WriteFile(cache, bin, 0o644)
		}
	}
	return SavePolicy(p)
}

func apparmorProfile(p *Policy) (string, error) {
	r := strconv.Itoa(p.Revision)
	return apparmor.Generate(apparmor.Profile{
		Label:     Label(p.App, p.Command),
		AppDir:    filepath.Join(SandboxAppsDir, p.App, r),
		DataDir:   filepath.Join(apparmor.DataRoot, p.App, r),
		CommonDir: filepath.Join(apparmor.DataRoot, p.App, "common"),
		Snippets:  p.AppArmor.Snippets,
		Complain:  p.AppArmor.Complain,
	})
}

// LoadAppArmor compiles and loads the AppArmor profiles of commands cmds of
// revision rev of app into the kernel, replacing those of another revision. On a kernel
// without AppArmor it does nothing.
func LoadAppArmor(app string, rev int, cmds []string) error {
	if !apparmor.Enabled() {
		return nil
	}
	for _, cmd := range cmds {
		text, err := os.ReadFile(AppArmorPath(app, rev, cmd))
		if err != nil {
			return fmt.Errorf("cannot load the AppArmor profile of %s: %w", Label(app, cmd), err)
		}
		bin, err := compiledAppArmor(app, rev, cmd, text)
		if err != nil {
			return err
		}
		if err := apparmor.Load(bin); err != nil {
			return fmt.Errorf("cannot load the AppArmor profile of %s: %w", Label(app, cmd), err)
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
	cache, err := compiledPath(app, rev, cmd)
	if err != nil {
		return nil, err
	}
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

// compiledPath is where the binary policy of a command's profile,
// compiled for this kernel, is kept.
func compiledPath(app string, rev int, cmd string) (string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", os.NewSyscallError("uname", err)
	}
	return AppArmorPath(app, rev, cmd) + "." + unix.ByteSliceToString(uts.Release[:]) + ".bin", nil
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

var hasParser = func() bool {
	_, err := exec.LookPath("apparmor_parser")
	return err == nil
}
