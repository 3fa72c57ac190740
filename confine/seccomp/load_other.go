//go:build !linux

package seccomp

import "errors"

var errNotLinux = errors.New("cannot load seccomp filter: seccomp exists only on Linux (run apps on a Linux device)")

// Load fails: seccomp exists only on Linux.
func Load(prog []byte) error { return errNotLinux }

// LoadFile fails: seccomp exists only on Linux.
func LoadFile(path string) error { return errNotLinux }

// LoadThread fails: seccomp exists only on Linux.
func LoadThread(prog []byte) error { return errNotLinux }
