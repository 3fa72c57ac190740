//go:build !linux

package loopmount

import "errors"

var errNotLinux = errors.New("loop mounts need Linux: run paddock on the device or in 'paddock vm run'")

// MountSquashFS is not available on this system.
func MountSquashFS(file, dir string) error { return errNotLinux }

// Unmount is not available on this system.
func Unmount(dir string) error { return errNotLinux }

// MountedFile is not available on this system.
func MountedFile(dir string) (string, error) { return "", errNotLinux }

// Mounts is not available on this system.
func Mounts() ([]Mount, error) { return nil, errNotLinux }
