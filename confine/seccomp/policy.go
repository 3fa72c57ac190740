// Package seccomp builds the seccomp policy of app sandboxes: a default-deny
// allowlist compiled ahead of time (at install or connect) into a raw BPF
// program with libseccomp, stored under /var/lib/paddock/profiles/, and loaded
// at launch with one seccomp(2) call, without cgo.
//
// Denied system calls return EPERM in Strict mode and are only logged in
// Devmode; nothing is ever killed.
//
// The compile side (Compile) needs cgo and libseccomp; the load side (Load,
// LoadFile, WriteProfile) does not, so a no-cgo launcher can still load
// profiles compiled elsewhere.
package seccomp

import (
	"fmt"
	"slices"

	"paddock.dev/paddock/internal/atomicfile"
)

// Mode says what happens to a system call the policy does not allow.
type Mode int

const (
	// Strict denies it with EPERM (and the kernel logs the denial where
	// the filter was loaded with logging).
	Strict Mode = iota
	// Devmode lets it through and only logs it (SECCOMP_RET_LOG).
	Devmode
)

// String returns "strict" or "devmode".
func (m Mode) String() string {
	switch m {
	case Strict:
		return "strict"
	case Devmode:
		return "devmode"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Policy is what Compile turns into a BPF program.
type Policy struct {
	// Arch is the Debian (amd64, arm64, armhf) or Go (arm) name of the
	// architecture the program runs on; empty means the one running now.
	Arch string
	// Mode says what happens to system calls outside the allowlist.
	Mode Mode
	// Extra are system calls added by connected interfaces (mknodat for a
	// custom-device, for instance), allowed without argument checks.
	Extra []string
}

// Arches lists the architectures Compile accepts, by their Debian names.
var Arches = []string{"amd64", "arm64", "armhf"}

// DefaultSyscalls returns the allowlist of every app, sorted. It names
// system calls of all supported architectures: a name that does not exist
// on the architecture being compiled for is skipped.
//
// Besides these, Compile allows three calls only with safe arguments:
// clone without namespace flags, personality with the harmless
// personalities, and ioctl other than TIOCSTI and TIOCLINUX (which push
// input into a terminal). clone3 is answered ENOSYS, since its flags live in
// memory that seccomp cannot inspect; libc then falls back to clone.
func DefaultSyscalls() []string {
	var all []string
	for _, group := range defaultGroups {
		all = append(all, group...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// WriteProfile stores a compiled program at path atomically (temporary
// file, fsync, rename, fsync of the directory), and leaves the file alone
// when it already holds prog.
func WriteProfile(path string, prog []byte) error {
	if err := checkProgram(prog); err != nil {
		return fmt.Errorf("cannot write seccomp profile %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, prog, 0o644)
}

// bpfMaxInsns is the kernel's limit on the length of a classic BPF program
// (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// sockFilterSize is the size of one struct sock_filter instruction.
const sockFilterSize = 8

// checkProgram reports whether prog looks like a program the kernel takes.
func checkProgram(prog []byte) error {
	switch {
	case len(prog) == 0:
		return fmt.Errorf("empty seccomp program")
	case len(prog)%sockFilterSize != 0:
		return fmt.Errorf("seccomp program of %d bytes is not a whole number of %d-byte instructions", len(prog), sockFilterSize)
	case len(prog)/sockFilterSize > bpfMaxInsns:
		return fmt.Errorf("seccomp program of %d instructions is longer than the kernel's limit of %d", len(prog)/sockFilterSize, bpfMaxInsns)
	}
	return nil
}
