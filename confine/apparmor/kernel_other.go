//go:build !linux

package apparmor

import "errors"

var errNotLinux = errors.New("apparmor is only available on Linux: run paddock on a Linux device")

// Enabled reports false: AppArmor is a Linux feature.
func Enabled() bool { return false }

// Load returns an error: AppArmor is a Linux feature.
func Load(binary []byte) error { return errNotLinux }

// ExecAs returns an error: AppArmor is a Linux feature.
func ExecAs(label string) error { return errNotLinux }

// Loaded reports false: there is no AppArmor here.
func Loaded(label string) bool { return false }
