package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sigUSR2 asks init to power off, as with busybox init.
var sigUSR2 os.Signal = unix.SIGUSR2

// initSignals are the signals PID 1 handles: without a handler, the Go
// runtime would exit on them, and the kernel panics when init exits.
var initSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGHUP, unix.SIGQUIT}

func (f mountFlags) unix() uintptr {
	var ms uintptr
	for bit, m := range map[mountFlags]uintptr{
		mReadOnly: unix.MS_RDONLY, mNoSuid: unix.MS_NOSUID, mNoDev: unix.MS_NODEV,
		mBind: unix.MS_BIND, mMove: unix.MS_MOVE,
	} {
		if f&bit != 0 {
			ms |= m
		}
	}
	return ms
}

// mount mounts and retries on EINTR.
func mount(source, target, fstype string, flags uintptr, data string) error {
	for {
		err := unix.Mount(source, target, fstype, flags, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot mount %s (%s) at %s: %w", source, fstype, target, os.NewSyscallError("mount", err))
		}
		return nil
	}
}

// mountOnce mounts a pseudo file system at target unless one of type magic
// is there already; it creates target if needed.
func mountOnce(fstype string, magic int64, target string, flags uintptr, data string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil && int64(st.Type) == magic {
		return nil
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("cannot mount %s: %w", fstype, err)
	}
	return mount(fstype, target, fstype, flags, data)
}

// runMountStep performs one mount of the new root. Mount points missing in
// the read-only base cannot be created: the error says so.
func runMountStep(m mountStep) error {
	if m.flags&mBind != 0 {
		if err := os.MkdirAll(m.source, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", m.source, err)
		}
	}
	if _, err := os.Stat(m.target); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount point %s is missing and cannot be created (the base image must have it): %w", m.target, err)
		}
	}
	err := mount(m.source, m.target, m.fstype, m.flags.unix(), m.data)
	if err != nil && m.fstype == "ext4" && errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w (does %s hold an ext4 file system? the image builder formats it)", err, m.source)
	}
	return err
}

// switchRoot makes dir the root: it moves the mount at dir onto /, and
// chroots into it. It returns freeInitramfs, which deletes what the
// initramfs holds to free its memory; the caller may run it later.
func switchRoot(dir string) (freeInitramfs func(), err error) {
	old, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot switch root: %w", os.NewSyscallError("open /", err))
	}
	if err := doSwitchRoot(dir); err != nil {
		unix.Close(old)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { deleteTree(old) }) }, nil
}

func doSwitchRoot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("cannot switch root: %w", os.NewSyscallError("chdir", err))
	}
	if err := mount(dir, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("cannot switch root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("cannot switch root: %w", os.NewSyscallError("chroot", err))
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("cannot switch root: %w", os.NewSyscallError("chdir", err))
	}
	return nil
}

// deleteTree deletes, as far as it can, what is in the directory fd
// without crossing into other file systems, and closes fd. It is best
// effort: what remains only costs memory.
func deleteTree(fd int) {
	d := os.NewFile(uintptr(fd), "initramfs")
	defer d.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		child, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Unlinkat(fd, name, 0) // a file or a symlink
			continue
		}
		var cst unix.Stat_t
		if unix.Fstat(child, &cst) == nil && cst.Dev == st.Dev {
			deleteTree(child) // closes child
			unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
		} else {
			unix.Close(child)
		}
	}
}

// ensureConsole points stdin, stdout and stderr at /dev/console when the
// kernel could not open it for init (an initramfs without /dev/console).
func ensureConsole() {
	var st unix.Stat_t
	if unix.Fstat(1, &st) == nil {
		return
	}
	fd, err := unix.Open(filepath.Join(devDir, "console"), unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := range 3 {
		unix.Dup3(fd, i, 0)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// execInit replaces init with argv, keeping PID 1.
func execInit(argv, env []string) error {
	err := unix.Exec(argv[0], argv, env)
	return fmt.Errorf("cannot run %s: %w", argv[0], os.NewSyscallError("exec", err))
}

// setHostname sets the host name from /etc/hostname, or "paddock".
func setHostname() error {
	name := "paddock"
	if b, err := os.ReadFile(hostnameFile); err == nil {
		if n := firstLine(string(b)); n != "" {
			name = n
		}
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("cannot set host name %q: %w", name, os.NewSyscallError("sethostname", err))
	}
	return nil
}

// bringUpLoopback sets lo up; the kernel then gives it 127.0.0.1 and ::1.
func bringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot bring up lo: %w", os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("cannot bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("cannot bring up lo: %w", os.NewSyscallError("SIOCGIFFLAGS", err))
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("cannot bring up lo: %w", os.NewSyscallError("SIOCSIFFLAGS", err))
	}
	return nil
}

// kernelRelease returns uname -r.
func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", os.NewSyscallError("uname", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// halt powers off or reboots the machine. If the kernel refuses, init
// stays alive doing nothing: PID 1 must not exit.
func halt(con *console, act action) {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if act == reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
		con.line(msgReboot)
	} else {
		con.line(msgPowerOff)
	}
	err := unix.Reboot(cmd)
	con.logf("cannot power off: %v", os.NewSyscallError("reboot", err))
	for {
		time.Sleep(time.Hour)
	}
}

// uptime is the time since the kernel started (CLOCK_BOOTTIME), for
// paddock.trace.
func uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
