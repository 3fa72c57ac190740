package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device-mapper through its control device, /dev/mapper/control, with the
// ioctls of <linux/dm-ioctl.h>: there is no libdevmapper nor udev in the
// initramfs.

// dmVersion is the interface version init speaks: the kernel accepts a
// request whose major matches and whose minor is not above its own.
var dmVersion = [3]uint32{4, 0, 0}

// A dmTarget is one line of a device-mapper table.
type dmTarget struct {
	start, length uint64 // in 512-byte sectors
	kind          string // "verity"
	params        string
}

// dmRequest builds the buffer of a device-mapper ioctl: a struct dm_ioctl
// for the device name with flags, then for each target a struct
// dm_target_spec followed by its parameters, NUL-terminated, padded to 8
// bytes (the spec's next is the offset of the following spec from its own
// start). data_start and data_size say where the targets start and the
// buffer's whole size.
func dmRequest(name string, flags uint32, targets []dmTarget) ([]byte, error) {
	if len(name) == 0 || len(name) >= len(unix.DmIoctl{}.Name) {
		return nil, fmt.Errorf("device-mapper name %q: want 1 to %d bytes", name, len(unix.DmIoctl{}.Name)-1)
	}
	size := unix.SizeofDmIoctl
	for _, t := range targets {
		if len(t.kind) >= len(unix.DmTargetSpec{}.Target_type) {
			return nil, fmt.Errorf("device-mapper target type %q is too long", t.kind)
		}
		size += specSize(t)
	}
	size = max(size, 16<<10)          // room for the kernel's answer
	buf := make([]uint64, (size+7)/8) // 8-byte aligned for the structs
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
	h := (*unix.DmIoctl)(unsafe.Pointer(&b[0]))
	h.Version = dmVersion
	h.Data_size = uint32(len(b))
	h.Data_start = unix.SizeofDmIoctl
	h.Target_count = uint32(len(targets))
	h.Flags = flags
	copy(h.Name[:], name)
	off := unix.SizeofDmIoctl
	for _, t := range targets {
		s := (*unix.DmTargetSpec)(unsafe.Pointer(&b[off]))
		s.Sector_start, s.Length = t.start, t.length
		s.Next = uint32(specSize(t))
		copy(s.Target_type[:], t.kind)
		copy(b[off+unix.SizeofDmTargetSpec:], t.params) // NUL-terminated by the zeroed buffer
		off += specSize(t)
	}
	return b, nil
}

// specSize is the size of a target's spec with its parameters and their
// NUL, rounded up to 8 bytes.
func specSize(t dmTarget) int { return (unix.SizeofDmTargetSpec + len(t.params) + 1 + 7) &^ 7 }

// dmIoctl runs one device-mapper ioctl on the control device.
func dmIoctl(ctl *os.File, req uintptr, what string, b []byte) (*unix.DmIoctl, error) {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), req, uintptr(unsafe.Pointer(&b[0])))
	if errno != 0 {
		return nil, fmt.Errorf("device-mapper %s: %w", what, errno)
	}
	return (*unix.DmIoctl)(unsafe.Pointer(&b[0])), nil
}

// dmControl opens /dev/mapper/control, making the node when devtmpfs has
// not (misc device 10:236).
func dmControl() (*os.File, error) {
	p := filepath.Join(devDir, "mapper", "control")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(10, 236))); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("cannot make %s: %w (is dm-mod loaded?)", p, err)
		}
		f, err = os.OpenFile(p, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the device-mapper: %w (is dm-mod loaded?)", err)
	}
	return f, nil
}

// dmCreate creates the read-only device name with one target, activates
// it, and makes its node /dev/mapper/NAME, which it returns. On failure
// nothing is left behind.
func dmCreate(name string, t dmTarget) (string, error) {
	ctl, err := dmControl()
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	req, err := dmRequest(name, 0, nil)
	if err != nil {
		return "", err
	}
	h, err := dmIoctl(ctl, unix.DM_DEV_CREATE, "create "+name, req)
	if err != nil {
		return "", err
	}
	dev := h.Dev
	ok := false
	defer func() {
		if !ok {
			dmRemoveWith(ctl, name)
		}
	}()
	if req, err = dmRequest(name, unix.DM_READONLY_FLAG, []dmTarget{t}); err != nil {
		return "", err
	}
	if _, err := dmIoctl(ctl, unix.DM_TABLE_LOAD, "load the "+t.kind+" table of "+name, req); err != nil {
		return "", err
	}
	req, _ = dmRequest(name, 0, nil) // suspend without DM_SUSPEND_FLAG resumes: the table goes live
	if _, err := dmIoctl(ctl, unix.DM_DEV_SUSPEND, "resume "+name, req); err != nil {
		return "", err
	}
	node := filepath.Join(devDir, "mapper", name)
	os.Remove(node)
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(dev)); err != nil {
		return "", fmt.Errorf("cannot make %s: %w", node, err)
	}
	ok = true
	return node, nil
}

// dmRemove removes the device name and its node, as far as it can.
func dmRemove(name string) {
	ctl, err := dmControl()
	if err != nil {
		return
	}
	defer ctl.Close()
	dmRemoveWith(ctl, name)
}

func dmRemoveWith(ctl *os.File, name string) {
	if req, err := dmRequest(name, 0, nil); err == nil {
		dmIoctl(ctl, unix.DM_DEV_REMOVE, "remove "+name, req)
	}
	os.Remove(filepath.Join(devDir, "mapper", name))
}
