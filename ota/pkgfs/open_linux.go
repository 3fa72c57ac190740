package pkgfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once openat2 said ENOSYS (kernels before 5.6): from then
// on paths are walked one component at a time. Tests set it to run the walk.
var noOpenat2 atomic.Bool

// resolveFlags keep a path beneath the root: no "..", no absolute symlink,
// no symlink at all, no /proc magic link, no other mount.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func openRoot(dir string) (*os.File, error) {
	fd, err := retry(func() (int, error) { return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return nil, os.NewSyscallError("open", err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openat opens name beneath the root with flags (O_NOFOLLOW and O_CLOEXEC
// are added).
func (r *Root) openat(name string, flags int) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	dirfd := int(r.dir.Fd())
	if !noOpenat2.Load() {
		how := &unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags}
		fd, err := retry(func() (int, error) { return unix.Openat2(dirfd, name, how) })
		if err != unix.ENOSYS {
			return fd, pathError(name, err)
		}
		noOpenat2.Store(true)
	}
	fd, err := walk(dirfd, name, flags)
	return fd, pathError(name, err)
}

// walk is openat2 beneath dirfd for kernels without it: it opens one
// component at a time with O_NOFOLLOW, refuses a symlink before the last
// one (and at the last one unless flags ask for O_PATH) and any component
// on another device than the root. name is a clean relative path.
func walk(dirfd int, name string, flags int) (int, error) {
	var root unix.Stat_t
	if err := unix.Fstat(dirfd, &root); err != nil {
		return -1, err
	}
	fd, err := retry(func() (int, error) { return unix.Openat(dirfd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return -1, err
	}
	parts := strings.Split(name, "/")
	for i, part := range parts {
		last := i == len(parts)-1
		fl := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			fl = flags
		}
		next, err := retry(func() (int, error) { return unix.Openat(fd, part, fl, 0) })
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, err
		}
		switch {
		case st.Dev != root.Dev:
			unix.Close(next)
			return -1, unix.EXDEV
		case !last && st.Mode&unix.S_IFMT == unix.S_IFLNK:
			unix.Close(next)
			return -1, unix.ELOOP
		}
		fd = next
	}
	return fd, nil
}

// retry calls open again while it is interrupted, or while openat2 says
// EAGAIN (a rename raced with a RESOLVE_BENEATH lookup).
func retry(open func() (int, error)) (int, error) {
	for i := 0; ; i++ {
		fd, err := open()
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 100 {
			continue
		}
		return fd, err
	}
}

// pathError turns an errno into an error that says what it means for a
// path in a package.
func pathError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case err == unix.ELOOP:
		return fmt.Errorf("%s %w", name, ErrSymlink)
	case err == unix.EXDEV:
		return fmt.Errorf("%s %w", name, ErrOutside)
	case err == unix.ENOENT, err == unix.ENOTDIR, err == unix.EACCES, err == unix.ENXIO:
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &fs.PathError{Op: "open", Path: name, Err: os.NewSyscallError("openat2", err)}
}

func (r *Root) lstat(name string) (fs.FileInfo, error) {
	fd, err := r.openat(name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return fstat(fd, name)
}

func fstat(fd int, name string) (*fileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: os.NewSyscallError("fstat", err)}
	}
	base := name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
	}
	return &fileInfo{name: base, size: st.Size, mode: fileMode(st.Mode), mtime: time.Unix(st.Mtim.Unix()), sys: &st}, nil
}

func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func (r *Root) readLink(name string) (string, error) {
	fd, err := r.openat(name, unix.O_PATH)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		if err == unix.ENOENT || err == unix.EINVAL {
			return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symlink")}
		}
		return "", &fs.PathError{Op: "readlink", Path: name, Err: os.NewSyscallError("readlinkat", err)}
	}
	return string(buf[:n]), nil
}

// open opens name for reading, without blocking on a FIFO and without
// making a terminal the controlling one.
func (r *Root) open(name string) (*os.File, error) {
	fd, err := r.openat(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readRegular reads name, which Lstat described as seen: the file opened
// must be that same regular file, and no larger than max, while it is read.
func (r *Root) readRegular(name string, seen fs.FileInfo, max int64) ([]byte, error) {
	f, err := r.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := fstat(int(f.Fd()), name)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(name, fi, max); err != nil {
		return nil, err
	}
	a, b := seen.Sys().(*unix.Stat_t), fi.sys.(*unix.Stat_t)
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return nil, fmt.Errorf("%s changed while it was read", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s %w: more than %d bytes", name, ErrTooLarge, max)
	}
	return data, nil
}
