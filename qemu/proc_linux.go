package qemu

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr has the kernel kill QEMU if this process dies first, so a
// crashed test leaves no VM behind.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
