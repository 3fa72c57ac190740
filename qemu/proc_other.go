//go:build !linux

package qemu

import "os/exec"

// setSysProcAttr does nothing here: only Linux kills a child with its
// parent, so a crashed caller may leave QEMU running (stop it by its PID).
func setSysProcAttr(cmd *exec.Cmd) {}
