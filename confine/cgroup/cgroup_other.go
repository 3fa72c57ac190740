//go:build !linux

package cgroup

import "errors"

var errNotLinux = errors.New("cgroups need Linux: run paddock on the device or in 'paddock vm run'")

// Group is one app command's cgroup.
type Group struct{ name string }

// Mode names the host's cgroup layout for messages; here "none".
func Mode() string { return "none" }

// Ensure is not available on this system.
func Ensure(name string, spec Spec) (*Group, error) { return nil, errNotLinux }

// Load is not available on this system.
func Load(name string) (*Group, error) { return nil, errNotLinux }

// Delete is not available on this system.
func Delete(name string) error { return errNotLinux }

// AddProc is not available on this system.
func (g *Group) AddProc(pid int) error { return errNotLinux }

// SetDevices is not available on this system.
func (g *Group) SetDevices(rules []DeviceRule) error { return errNotLinux }

// Procs is not available on this system.
func (g *Group) Procs() ([]int, error) { return nil, errNotLinux }

// Name returns the group's name.
func (g *Group) Name() string { return g.name }
