package baseupdate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysBlock is where the kernel lists block devices; tests may swap it.
var sysBlock = "/sys/block"

// checkNotInUse refuses a slot that is the running slot, or a block device
// that is mounted or held (opened exclusively: the kernel's own test), or
// a file that backs a loop device.
func checkNotInUse(slot, running string) error {
	fi, err := os.Stat(slot)
	if err != nil {
		return fmt.Errorf("cannot update the base: %w", err)
	}
	if running != "" {
		if rfi, err := os.Stat(running); err == nil && sameDevice(fi, rfi) {
			return fmt.Errorf("cannot update the base: %s is the running slot (%s): %w", slot, running, ErrInUse)
		}
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		fd, err := unix.Open(slot, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cannot update the base: %s is mounted or held by another device (the running base under dm-verity?): %w", slot, ErrInUse)
		}
		if err != nil {
			return fmt.Errorf("cannot update the base: %w", os.NewSyscallError("open", err))
		}
		unix.Close(fd)
	case fi.Mode().IsRegular():
		if loop := backingLoop(slot); loop != "" {
			return fmt.Errorf("cannot update the base: %s backs loop device %s: %w", slot, loop, ErrInUse)
		}
	default:
		return fmt.Errorf("cannot update the base: %s is neither a block device nor a file", slot)
	}
	return nil
}

// sameDevice reports whether two files are the same file or block device.
func sameDevice(a, b os.FileInfo) bool {
	if os.SameFile(a, b) {
		return true
	}
	sa, ok1 := a.Sys().(*unix.Stat_t)
	sb, ok2 := b.Sys().(*unix.Stat_t)
	isBlock := func(fi os.FileInfo) bool { return fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 }
	return ok1 && ok2 && isBlock(a) && isBlock(b) && sa.Rdev == sb.Rdev
}

// backingLoop returns the loop device that file backs, or "".
func backingLoop(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	loops, _ := filepath.Glob(filepath.Join(sysBlock, "loop*", "loop", "backing_file"))
	for _, bf := range loops {
		b, err := os.ReadFile(bf)
		if err == nil && strings.TrimSuffix(string(b), "\n") == abs {
			return "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(bf)))
		}
	}
	return ""
}

// openSlot opens the slot for writing; a block device exclusively, so that
// nobody mounts it meanwhile, and only when the image fits.
func openSlot(slot string, size int64) (*os.File, error) {
	fi, err := os.Stat(slot)
	if err != nil {
		return nil, fmt.Errorf("cannot update the base: %w", err)
	}
	flags := os.O_WRONLY
	if fi.Mode()&os.ModeDevice != 0 {
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(slot, flags, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("cannot update the base: %s is mounted or held by another device: %w", slot, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot update the base: %w", err)
	}
	if fi.Mode()&os.ModeDevice != 0 {
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot update the base: size of %s: %w", slot, err)
		}
		if end < size {
			f.Close()
			return nil, fmt.Errorf("cannot update the base: the image is %d bytes, slot %s holds %d (make the base partitions larger in gadget.yaml)", size, slot, end)
		}
	}
	return f, nil
}

// alignedBuffer returns n bytes aligned to a page, so that the slot can be
// written with O_DIRECT.
func alignedBuffer(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % align); r != 0 {
		off = align - r
	}
	return b[off : off+n : off+n]
}

// directAlign is the alignment of offsets, lengths and buffers of the
// slot's O_DIRECT reads and writes: a page, a multiple of any block
// device's logical block size.
const directAlign = 4096

// openDirect opens path with O_DIRECT, for reads or writes (flag) that
// bypass the page cache: a write reaches the device before it returns,
// and a read reads the medium. It returns nil when the file system or
// device does not take O_DIRECT (tmpfs); the caller then goes through the
// page cache.
func openDirect(path string, flag int) *os.File {
	f, err := os.OpenFile(path, flag|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return f
}

// datasync flushes f's data (not its times) to the medium.
func datasync(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return os.NewSyscallError("fdatasync", err)
	}
	return nil
}

// dropCache asks the kernel to drop the cached pages of the first size
// bytes of f, after a sync, so that reading them reads the medium.
func dropCache(f *os.File, size int64) {
	f.Sync()
	unix.Fadvise(int(f.Fd()), 0, size, unix.FADV_DONTNEED)
}

// dropRange asks the kernel to drop the cached pages of bytes [off,
// off+n) of f, synced before, so that reading them reads the medium.
func dropRange(f *os.File, off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
