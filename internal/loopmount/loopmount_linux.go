package loopmount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountSquashFS attaches file to a free loop device, read-only and cleared
// automatically on unmount, and mounts it at dir read-only with nodev and
// nosuid. Mounting a file that is already mounted at dir does nothing, so a
// task that repeats it after a crash gets the same result.
func MountSquashFS(file, dir string) error {
	if cur, err := MountedFile(dir); err == nil {
		if cur == file {
			return nil
		}
		return fmt.Errorf("cannot mount %s at %s: %s is mounted there", file, dir, cur)
	} else if !errors.Is(err, ErrNotMounted) {
		return err
	}
	dev, err := attach(file)
	if err != nil {
		return fmt.Errorf("cannot mount %s: %w", file, err)
	}
	defer dev.Close() // the mount holds its own reference; autoclear frees the device after unmount
	flags := uintptr(unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID)
	if err := retryEINTR(func() error { return unix.Mount(dev.Name(), dir, "squashfs", flags, "") }); err != nil {
		return fmt.Errorf("cannot mount %s at %s: %w", file, dir, os.NewSyscallError("mount", err))
	}
	return nil
}

// attach binds file to a free loop device and returns the open device.
func attach(file string) (*os.File, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	var cfg unix.LoopConfig
	cfg.Fd = uint32(f.Fd())
	cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
	// Another process may take the free device between GET_FREE and CONFIGURE: try again.
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, os.NewSyscallError("LOOP_CTL_GET_FREE", err)
		}
		dev, err := openLoop(n)
		if err != nil {
			return nil, err
		}
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if err != unix.EBUSY {
			return nil, os.NewSyscallError("LOOP_CONFIGURE", err)
		}
	}
	return nil, errors.New("no free loop device: all were taken concurrently")
}

// openLoop opens /dev/loopN, waiting briefly for devtmpfs to create a new node.
func openLoop(n int) (*os.File, error) {
	name := fmt.Sprintf("/dev/loop%d", n)
	var err error
	for range 50 {
		var f *os.File
		f, err = os.OpenFile(name, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, err
}

// Unmount unmounts dir. Unmounting a directory where nothing is mounted does
// nothing. A busy mount is detached lazily so that it goes away when its last
// user does.
func Unmount(dir string) error {
	if _, err := MountedFile(dir); errors.Is(err, ErrNotMounted) {
		return nil
	}
	err := retryEINTR(func() error { return unix.Unmount(dir, 0) })
	if err == unix.EBUSY {
		err = retryEINTR(func() error { return unix.Unmount(dir, unix.MNT_DETACH) })
	}
	if err != nil && err != unix.EINVAL {
		return fmt.Errorf("cannot unmount %s: %w", dir, os.NewSyscallError("umount2", err))
	}
	return nil
}

// MountedFile returns the backing file of the loop device mounted at dir, or
// ErrNotMounted.
func MountedFile(dir string) (string, error) {
	mounts, err := Mounts()
	if err != nil {
		return "", err
	}
	dir = filepath.Clean(dir)
	for i := len(mounts) - 1; i >= 0; i-- { // the last mount at a point is the visible one
		m := mounts[i]
		if m.Dir != dir {
			continue
		}
		dev := strings.TrimPrefix(m.Source, "/dev/")
		if !strings.HasPrefix(dev, "loop") {
			return m.Source, nil
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", dev, "loop/backing_file"))
		if err != nil {
			return "", fmt.Errorf("cannot read backing file of %s: %w", m.Source, err)
		}
		return strings.TrimSuffix(string(b), "\n"), nil
	}
	return "", fmt.Errorf("%s: %w", dir, ErrNotMounted)
}

// Mounts returns the mounts of the calling process's mount namespace, in order.
func Mounts() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cannot read mount table: %w", err)
	}
	return parseMountinfo(string(b)), nil
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
