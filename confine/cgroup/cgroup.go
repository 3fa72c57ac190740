// Package cgroup puts each app command in its own control group,
// "paddock.APP.CMD", shared by all its instances: a device allowlist that is
// always on, plus memory, pids and cpu limits.
//
// On cgroup v1 and hybrid hosts the group lives in the devices, memory, pids
// and cpu hierarchies (devices.deny/devices.allow); on unified (v2) hosts it
// lives in the one hierarchy and the allowlist is an eBPF device program.
// Both are driven through github.com/containerd/cgroups/v3.
package cgroup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Parent is the cgroup under which paddock puts its groups, in every
// hierarchy. Tests set a unique name and remove it afterwards.
var Parent = "paddock"

// ParentFor is the parent cgroup of the groups of the device whose root
// directory is root: Parent for "/", and for another root (a test or a
// demo) Parent followed by a digest of the root, so that each root has
// groups of its own.
func ParentFor(root string) string {
	if root == "/" || root == "" {
		return Parent
	}
	sum := sha256.Sum256([]byte(root))
	return Parent + "-" + hex.EncodeToString(sum[:6])
}

// ErrBusy is wrapped by Delete when processes are still in the group.
var ErrBusy = errors.New("cgroup has running processes")

// Spec is what a group should enforce.
type Spec struct {
	// Devices is the allowlist; everything else is denied. Empty allows nothing.
	Devices []DeviceRule
	// MemoryMax is the memory limit in bytes (swap included); 0 means none.
	MemoryMax int64
	// PidsMax caps the number of tasks; 0 means none.
	PidsMax int64
	// CPUPercent caps CPU time in percent of one CPU; 0 means none.
	CPUPercent int
}

// Validate reports whether s can be applied.
func (s Spec) Validate() error {
	if err := validateRules(s.Devices); err != nil {
		return err
	}
	if s.MemoryMax < 0 || s.PidsMax < 0 || s.CPUPercent < 0 {
		return fmt.Errorf("invalid cgroup spec: negative limit (use 0 for none)")
	}
	return nil
}

func validateName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\n") {
		return fmt.Errorf("invalid cgroup name %q (want a single path element such as paddock.APP.CMD)", name)
	}
	if Parent == "" || strings.Contains(Parent, "..") {
		return fmt.Errorf("internal error: invalid cgroup parent %q", Parent)
	}
	return nil
}
