//go:build linux && cgo

package seccomp

import (
	"fmt"
	"io"
	"os"
	"runtime"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Compile builds the BPF program of p: an array of struct sock_filter
// (8 bytes each) in the target's byte order, ready for Load on a machine of
// p.Arch. System calls outside DefaultSyscalls and p.Extra get EPERM
// (Strict) or are logged (Devmode); so do those of any other architecture
// the kernel may be asked for (x86 32-bit or x32 on amd64, for instance).
// A name that libseccomp does not know on any architecture is an error.
func Compile(p Policy) ([]byte, error) {
	arch, err := scmpArch(p.Arch)
	if err != nil {
		return nil, err
	}
	deny, err := denyAction(p.Mode)
	if err != nil {
		return nil, err
	}
	f, err := newFilter(arch, deny)
	if err != nil {
		return nil, fmt.Errorf("cannot compile seccomp policy for %s: %w", archName(p.Arch), err)
	}
	defer f.Release()
	if err := addRules(f, arch, p.Extra); err != nil {
		return nil, fmt.Errorf("cannot compile seccomp policy for %s: %w", archName(p.Arch), err)
	}
	prog, err := export(f)
	if err != nil {
		return nil, fmt.Errorf("cannot compile seccomp policy for %s: %w", archName(p.Arch), err)
	}
	return prog, nil
}

// scmpArch maps a Debian or Go architecture name to libseccomp's.
func scmpArch(name string) (libseccomp.ScmpArch, error) {
	switch archName(name) {
	case "amd64":
		return libseccomp.ArchAMD64, nil
	case "arm64":
		return libseccomp.ArchARM64, nil
	case "arm", "armhf":
		return libseccomp.ArchARM, nil
	}
	return libseccomp.ArchInvalid, fmt.Errorf("cannot compile seccomp policy for architecture %q (supported: amd64, arm64, armhf)", name)
}

// archName returns name, or the running architecture when name is empty.
func archName(name string) string {
	if name == "" {
		return runtime.GOARCH
	}
	return name
}

// denyAction is what m does to a call that the policy does not allow.
func denyAction(m Mode) (libseccomp.ScmpAction, error) {
	switch m {
	case Strict:
		return libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM)), nil
	case Devmode:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("internal error: unknown seccomp mode %d", int(m))
}

// newFilter returns an empty filter for arch alone, whose default and
// bad-architecture actions are deny.
func newFilter(arch libseccomp.ScmpArch, deny libseccomp.ScmpAction) (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(deny)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, err
	}
	if native != arch {
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("add architecture %s: %w", arch, err)
		}
		if err := f.RemoveArch(native); err != nil {
			return nil, fmt.Errorf("remove architecture %s: %w", native, err)
		}
	}
	// Never a kill, even for a 32-bit call on a 64-bit kernel.
	if err := f.SetBadArchAction(deny); err != nil {
		return nil, fmt.Errorf("set bad architecture action: %w", err)
	}
	// The launcher sets no_new_privs itself; these bits only matter if
	// libseccomp loaded the filter, which it never does here.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("set no_new_privs bit: %w", err)
	}
	if err := f.SetLogBit(true); err != nil {
		return nil, fmt.Errorf("set log bit: %w", err)
	}
	ok = true
	return f, nil
}

// addRules allows the default calls and extra on arch, and adds the calls
// allowed only with some arguments.
func addRules(f *libseccomp.ScmpFilter, arch libseccomp.ScmpArch, extra []string) error {
	names := append(DefaultSyscalls(), extra...)
	allowed := make(map[string]bool, len(names))
	for _, name := range names {
		if allowed[name] {
			continue
		}
		allowed[name] = true
		call, ok, err := resolve(name, arch)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := f.AddRule(call, libseccomp.ActAllow); err != nil {
			return fmt.Errorf("allow %s: %w", name, err)
		}
	}
	return addArgRules(f, arch, allowed)
}

// resolve returns the number by which libseccomp's rule functions know
// name, and whether the call exists on arch. Those functions take the
// number of the architecture this program runs on (or a negative pseudo
// number for calls it lacks) and translate it by name for each architecture
// of the filter. A name libseccomp does not know at all is an error.
func resolve(name string, arch libseccomp.ScmpArch) (libseccomp.ScmpSyscall, bool, error) {
	call, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		v1, v2, v3 := libseccomp.GetLibraryVersion()
		return 0, false, fmt.Errorf("unknown system call %q (libseccomp %d.%d.%d)", name, v1, v2, v3)
	}
	onArch, err := libseccomp.GetSyscallFromNameByArch(name, arch)
	return call, err == nil && onArch >= 0, nil
}

// export writes the program of f into a memory file and returns it.
func export(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("paddock-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	mem := os.NewFile(uintptr(fd), "paddock-seccomp")
	defer mem.Close()
	if err := f.ExportBPF(mem); err != nil {
		return nil, fmt.Errorf("export BPF: %w", err)
	}
	if _, err := mem.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	prog, err := io.ReadAll(mem)
	if err != nil {
		return nil, err
	}
	if err := checkProgram(prog); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	return prog, nil
}
