package apparmor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/dirs"
)

// The kernel interfaces, relative to dirs.Root so tests can fake them.
const (
	enabledParam = "sys/module/apparmor/parameters/enabled"
	securityFS   = "sys/kernel/security"
	apparmorFS   = "sys/kernel/security/apparmor"
)

// Enabled reports whether the kernel has AppArmor, it is enabled, and its
// securityfs interface is visible (/sys/kernel/security/apparmor). Mount
// securityfs early at boot: until then Enabled reports false.
func Enabled() bool {
	b, err := os.ReadFile(filepath.Join(dirs.Root, enabledParam))
	if err != nil || string(bytes.TrimSpace(b)) != "Y" {
		return false
	}
	fi, err := os.Stat(filepath.Join(dirs.Root, apparmorFS))
	return err == nil && fi.IsDir()
}

// Loaded reports whether the kernel holds a profile named label
// (/sys/kernel/security/apparmor/profiles lists "NAME (MODE)" lines).
func Loaded(label string) bool {
	b, err := os.ReadFile(filepath.Join(dirs.Root, apparmorFS, "profiles"))
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(line, []byte(label+" (")) {
			return true
		}
	}
	return false
}

// Load loads (or replaces) the compiled binary policy in the kernel through
// /sys/kernel/security/apparmor/.replace, mounting securityfs first if needed.
func Load(binary []byte) error {
	if len(binary) == 0 {
		return errors.New("cannot load apparmor profile: empty policy")
	}
	if err := mountSecurityFS(); err != nil {
		return err
	}
	name := filepath.Join(dirs.Root, apparmorFS, ".replace")
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot load apparmor profile: %w", err)
	}
	// The kernel takes the whole policy in one write; os.File.Write makes
	// one write(2) for a buffer this size and retries on EINTR.
	_, werr := f.Write(binary)
	if err := f.Close(); werr == nil && err != nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("cannot load apparmor profile: %w", werr)
	}
	return nil
}

// mountSecurityFS mounts securityfs at /sys/kernel/security unless AppArmor's
// directory is already there.
func mountSecurityFS() error {
	dir := filepath.Join(dirs.Root, apparmorFS)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dirs.Root, enabledParam)); err != nil {
		return errors.New("cannot load apparmor profile: the kernel has no AppArmor")
	}
	target := filepath.Join(dirs.Root, securityFS)
	err := unix.Mount("securityfs", target, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("cannot load apparmor profile: mount securityfs on %s: %w", target, os.NewSyscallError("mount", err))
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("cannot load apparmor profile: AppArmor is not enabled: %w", err)
	}
	return nil
}

// execAttrs are the files that take "exec LABEL", newest interface first.
var execAttrs = []string{
	"proc/thread-self/attr/apparmor/exec",
	"proc/thread-self/attr/exec",
	"proc/self/attr/apparmor/exec",
	"proc/self/attr/exec",
}

// ExecAs asks the kernel to switch to profile label at the next exec of the
// calling thread (change_onexec). The attribute belongs to the thread, and a
// Go program may move between threads: the caller must runtime.LockOSThread
// before ExecAs and call syscall.Exec from that same locked thread, with
// nothing in between that could exec or clone. The profile must be loaded;
// an unknown label makes the write fail with ENOENT.
func ExecAs(label string) error {
	if !labelRE().MatchString(label) {
		return fmt.Errorf("cannot exec as %q: %w: bad label", label, ErrInvalid)
	}
	for _, attr := range execAttrs {
		f, err := os.OpenFile(filepath.Join(dirs.Root, attr), os.O_WRONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue // an older kernel, or no thread-self
		}
		if err != nil {
			return fmt.Errorf("cannot exec as %s: %w", label, err)
		}
		_, werr := f.Write([]byte("exec " + label))
		if err := f.Close(); werr == nil && err != nil {
			werr = err
		}
		if werr != nil {
			return fmt.Errorf("cannot exec as %s (is the profile loaded?): %w", label, werr)
		}
		return nil
	}
	return fmt.Errorf("cannot exec as %s: the kernel has no AppArmor", label)
}
