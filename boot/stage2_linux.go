package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"paddock.dev/paddock/internal/loopmount"
)

// killWait is how long init waits for the remaining processes to exit
// after SIGTERM, and again after SIGKILL, when it shuts down.
var killWait = 2 * time.Second

// stage2 runs in the base as PID 1: it sets the system up, supervises the
// agent until told to stop, then powers off or reboots. afterReady, if
// set, is work that can wait until the agent is ready. It returns only
// when the setup fails, with whether paddock.debug was set.
func stage2(con *console, signals <-chan os.Signal, afterReady func()) (debug bool, err error) {
	cl, err := readCmdline()
	con.trace = cl.Trace
	if err != nil {
		return cl.Debug, err
	}
	con.logf("booted base slot %s", os.Getenv("PADDOCK_BOOT_SLOT"))
	if err := setupBase(con); err != nil {
		return cl.Debug, err
	}
	con.tracef("base set up")
	r := newReaper()
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	s := newSupervisor(con, r, cl.Cmd)
	if rec, err := Running(); err == nil && rec.Tried {
		triedBoot = true // a failure reboots
		startTryMonitor(ctx, con, cl, s.agentReady)
	} else if w := inheritedWatchdog(); w != nil {
		w.disarm()
	}
	// lo waits for the agent too: the agent serves on a unix socket, and
	// apps (and paddock.cmd) start only once it is ready.
	s.afterReady = func() {
		if err := bringUpLoopback(); err != nil {
			con.logf("%v", err)
		}
		if afterReady != nil {
			afterReady()
		}
	}
	act := s.run(signals)
	killAll(r)
	cancel()
	finish(con, act)
	return cl.Debug, errors.New("internal error: finish returned")
}

// setupBase mounts the pseudo file systems the agent needs (securityfs for
// AppArmor, cgroup2, devpts, /dev/shm) and sets the host name.
func setupBase(con *console) error {
	const noExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mounts := []struct {
		fstype string
		magic  int64
		dir    string
		flags  uintptr
		data   string
	}{
		{"securityfs", unix.SECURITYFS_MAGIC, filepath.Join(sysDir, "kernel/security"), noExec, ""},
		{"cgroup2", unix.CGROUP2_SUPER_MAGIC, filepath.Join(sysDir, "fs/cgroup"), noExec, ""},
		{"devpts", unix.DEVPTS_SUPER_MAGIC, filepath.Join(devDir, "pts"), unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
		{"tmpfs", unix.TMPFS_MAGIC, filepath.Join(devDir, "shm"), unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	}
	for _, m := range mounts {
		if err := mountOnce(m.fstype, m.magic, m.dir, m.flags, m.data); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		os.Symlink(target, filepath.Join(devDir, name)) // exists already: fine
	}
	if err := setHostname(); err != nil {
		con.logf("%v", err)
	}
	// ctrl-alt-del sends SIGINT to init (a clean reboot) instead of resetting
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	return nil
}

// killAll stops what is left after the agent (apps it did not stop,
// orphans): SIGTERM, then SIGKILL, reaping them, so the data partition
// can be unmounted.
func killAll(r *reaper) {
	unix.Kill(-1, unix.SIGTERM)
	if !r.waitNone(killWait) {
		unix.Kill(-1, unix.SIGKILL)
		r.waitNone(killWait)
	}
}

// finish unmounts what it can, then powers off or reboots.
func finish(con *console, act action) {
	unix.Sync()
	unmountAll(con)
	halt(con, act)
}

// unmountAll unmounts the data partition and everything else but the
// root and the kernel's pseudo file systems; a busy mount is made
// read-only instead, so that it is clean on the next boot.
func unmountAll(con *console) {
	mounts, err := loopmount.Mounts()
	if err != nil {
		con.logf("cannot unmount: %v", err)
		return
	}
	for _, dir := range unmountOrder(mounts) {
		if err := unix.Unmount(dir, 0); err == nil || err == unix.EINVAL {
			continue // EINVAL: went with its parent already
		}
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			con.logf("cannot unmount %s or make it read-only: %v", dir, err)
		}
	}
}
