package daemon

import (
	"os"

	"golang.org/x/sys/unix"
)

// rebootMachine flushes the disks and restarts the machine.
func rebootMachine() error {
	unix.Sync()
	return os.NewSyscallError("reboot", unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART))
}
