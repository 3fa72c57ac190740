package launch

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/dirs"
)

// mountCtl shows the agent's in-app socket folder read-only at
// /run/paddock-ctl, and links /run/paddock-ctl.sock to the socket in it:
// 'paddock ctl' reaches the agent there (the agent tells apps apart by
// their credentials, not by where they connect from). The folder, not the
// socket, is bound, so that a kept sandbox reaches the socket of an agent
// that started again after it.
//
// The folder's host path comes in the spec: the sandbox's init does not
// know the root directory.
func mountCtl(root string, s *Spec) error {
	if s.HostCtlDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.HostCtlDir, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(root, "run", "paddock-ctl")
	if err := bindDir(s.HostCtlDir, dst, 0, ro|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return err
	}
	return os.Symlink(filepath.Join("paddock-ctl", dirs.CtlSocketName), filepath.Join(root, "run", dirs.CtlSocketName))
}
