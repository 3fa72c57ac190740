package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs prog, a program made by Compile for this architecture, as
// a seccomp filter on every thread of the calling process (TSYNC), asking
// the kernel to log what it denies (FLAG_LOG, dropped on kernels that
// refuse it). It needs no cgo.
//
// The kernel takes a filter only from a thread with no_new_privs set
// (prctl(PR_SET_NO_NEW_PRIVS, 1), which the launcher does on the same locked
// thread just before) or with CAP_SYS_ADMIN. A filter cannot be removed:
// call Load in the process that is about to exec the app.
func Load(prog []byte) error {
	return load(prog, unix.SECCOMP_FILTER_FLAG_TSYNC)
}

// LoadThread is Load for the calling thread only, which must be locked
// (runtime.LockOSThread): the launcher strips one thread of its privileges
// and forks the app from it, leaving the other threads as they are.
func LoadThread(prog []byte) error {
	return load(prog, 0)
}

func load(prog []byte, flags uintptr) error {
	if err := checkProgram(prog); err != nil {
		return fmt.Errorf("cannot load seccomp filter: %w", err)
	}
	insns := make([]unix.SockFilter, len(prog)/sockFilterSize)
	for i := range insns {
		b := prog[i*sockFilterSize:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	err := setFilter(&fprog, flags|unix.SECCOMP_FILTER_FLAG_LOG)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 4.14 know no FLAG_LOG.
		err = setFilter(&fprog, flags)
	}
	runtime.KeepAlive(insns)
	switch {
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("cannot load seccomp filter: %w (set no_new_privs first, or run with CAP_SYS_ADMIN)", err)
	case err != nil:
		return fmt.Errorf("cannot load seccomp filter: %w", err)
	}
	return nil
}

// LoadFile loads the program stored at path by WriteProfile.
func LoadFile(path string) error {
	prog, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot load seccomp filter: %w", err)
	}
	if err := Load(prog); err != nil {
		return fmt.Errorf("%w (from %s)", err, path)
	}
	return nil
}

// setFilter calls seccomp(SECCOMP_SET_MODE_FILTER, flags, fprog).
func setFilter(fprog *unix.SockFprog, flags uintptr) error {
	for {
		r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(fprog)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return os.NewSyscallError("seccomp", errno)
		case r != 0:
			// With TSYNC, a positive result names a thread that
			// could not be synchronised.
			return fmt.Errorf("thread %d cannot take the filter: it has a filter of its own", r)
		}
		return nil
	}
}
