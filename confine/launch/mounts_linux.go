package launch

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// baseDirs are the top-level directories of the base that apps see, read-only.
var baseDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "opt"}

// maskedProc are files of /proc that leak host details or control the host;
// /dev/null is bound over them (as runc does).
var maskedProc = []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "sysrq-trigger", "kallsyms"}

// readOnlyProc are directories of /proc that stay visible but read-only.
var readOnlyProc = []string{"sys", "irq", "bus", "fs"}

const (
	ro     = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	rwData = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// setupMounts builds the sandbox's root in a tmpfs on the scratch directory
// and pivots into it. Nothing propagates back to the host.
func setupMounts(s *Spec) error {
	if err := mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return err
	}
	root := s.Scratch
	if err := mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return err
	}
	steps := []func(string, *Spec) error{mountBase, mountApp, mountData, mountTmp, mountResolv, mountDev, mountProc, mountPolicy, mountCtl}
	for _, step := range steps {
		if err := step(root, s); err != nil {
			return err
		}
	}
	return pivot(root)
}

func mountBase(root string, _ *Spec) error {
	for _, d := range baseDirs {
		src := "/" + d
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		dst := filepath.Join(root, d)
		if fi.Mode()&os.ModeSymlink != 0 { // a merged /usr: /bin -> usr/bin
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
			continue
		}
		if err := bindDir(src, dst, unix.MS_REC, ro); err != nil {
			return err
		}
	}
	return nil
}

func mountApp(root string, s *Spec) error {
	if err := bindDir(s.HostAppDir, filepath.Join(root, s.AppDir), 0, ro); err != nil {
		return err
	}
	return os.Symlink(filepath.Base(s.AppDir), filepath.Join(root, filepath.Dir(s.AppDir), "current"))
}

func mountData(root string, s *Spec) error {
	if err := bindDir(s.HostDataDir, filepath.Join(root, s.DataDir), 0, rwData); err != nil {
		return err
	}
	if err := bindDir(s.HostCommonDir, filepath.Join(root, s.CommonDir), 0, rwData); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		return err
	}
	return os.Symlink("/tmp", filepath.Join(root, "var/tmp"))
}

func mountTmp(root string, _ *Spec) error {
	for _, d := range []struct{ path, opts string }{{"tmp", "mode=1777"}, {"run", "mode=0755"}} {
		dst := filepath.Join(root, d.path)
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		if err := mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, d.opts); err != nil {
			return err
		}
	}
	return nil
}

// mountDev shows the host's /dev read-only (the device cgroup decides what
// may be opened), with a private devpts instance and a private /dev/shm.
func mountDev(root string, _ *Spec) error {
	dev := filepath.Join(root, "dev")
	if err := bindDir("/dev", dev, 0, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return err
	}
	pts := filepath.Join(dev, "pts")
	if err := mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := mount(filepath.Join(pts, "ptmx"), filepath.Join(dev, "ptmx"), "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dev, "shm")); err == nil {
		return mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777")
	}
	return nil
}

// mountProc mounts a procfs of the sandbox's PID namespace, with the parts
// that control the host read-only or hidden.
func mountProc(root string, _ *Spec) error {
	proc := filepath.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return err
	}
	if err := mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, d := range readOnlyProc {
		p := filepath.Join(proc, d)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := bindDir(p, p, unix.MS_REC, ro|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return err
		}
	}
	for _, f := range maskedProc {
		p := filepath.Join(proc, f)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	return nil
}

// mountPolicy shows the host directories of the policy without running
// programs from them (like /sys), read-only unless the policy marks them
// writable (a content folder shared read-write); the sandbox has no /sys
// unless one of them is.
func mountPolicy(root string, s *Spec) error {
	for _, m := range s.Mounts {
		dst := filepath.Join(root, m.Target)
		if !m.Write {
			if err := bindDir(m.Source, dst, unix.MS_REC, ro|unix.MOUNT_ATTR_NOEXEC); err != nil {
				return err
			}
			continue
		}
		if err := bindWritable(m.Source, dst); err != nil {
			return err
		}
	}
	return nil
}

// bindWritable bind-mounts src read-write at dst, following no symlink on
// the way to src: a writable source lies in another app's data, which that
// app could swap for a link to a host directory.
func bindWritable(src, dst string) error {
	fd, err := unix.Openat2(unix.AT_FDCWD, src, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("cannot open %s to share it: %w", src, os.NewSyscallError("openat2", err))
	}
	defer unix.Close(fd)
	return bindDir(fmt.Sprintf("/proc/self/fd/%d", fd), dst, 0, rwData|unix.MOUNT_ATTR_NOEXEC)
}

// pivot makes root the root directory and detaches the host's.
func pivot(root string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on the new one; unmounting it
	// leaves the new root alone (the trick runc uses).
	if err := unix.PivotRoot(".", "."); err != nil {
		return os.NewSyscallError("pivot_root", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return os.NewSyscallError("umount2", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	return setattr("/", 0, unix.MOUNT_ATTR_RDONLY)
}

// bindDir bind-mounts src at dst (created as a directory), then sets attrs
// on it and, with MS_REC in flags, on every mount below it.
func bindDir(src, dst string, flags uintptr, attrs uint64) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := mount(src, dst, "", unix.MS_BIND|flags, ""); err != nil {
		return err
	}
	var at uint
	if flags&unix.MS_REC != 0 {
		at = unix.AT_RECURSIVE
	}
	return setattr(dst, at, attrs)
}

func setattr(path string, flags uint, attrs uint64) error {
	err := unix.MountSetattr(unix.AT_FDCWD, path, flags|unix.AT_SYMLINK_NOFOLLOW, &unix.MountAttr{Attr_set: attrs})
	if err != nil {
		return fmt.Errorf("cannot set mount attributes of %s: %w", path, os.NewSyscallError("mount_setattr", err))
	}
	return nil
}

func mount(src, dst, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("cannot mount %s on %s: %w", src, dst, os.NewSyscallError("mount", err))
	}
	return nil
}
