// Package pkgfs reads files of a package mounted on the device without ever
// leaving it. It is the one way the agent reads from a package.
//
// A package is signed by a publisher, but a package not made by 'paddock
// pack' may hold anything SquashFS can: symlinks to the device's files or
// to /dev/zero, FIFOs, device nodes, sparse files of gigabytes. So every
// path is resolved beneath the package's root without following a symlink
// and without crossing into another mount (openat2 with RESOLVE_BENEATH,
// RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV; on kernels
// before 5.6, a walk that opens one component at a time with O_NOFOLLOW and
// checks the device), a file is opened O_NONBLOCK only after it was seen to
// be a regular file, and its size is bounded before and while it is read.
//
// Errors name the path inside the package and what was wrong with it; they
// never hold what a file contains.
package pkgfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Sentinel errors, wrapped with the path they are about.
var (
	// ErrSymlink: the path is a symlink or passes through one.
	ErrSymlink = errors.New("is a symlink or lies behind one")
	// ErrOutside: the path leads out of the package (into another mount).
	ErrOutside = errors.New("leads out of the package")
	// ErrNotRegular: ReadFile was asked for something else than a regular file.
	ErrNotRegular = errors.New("is not a regular file")
	// ErrTooLarge: the file is larger than the caller allows.
	ErrTooLarge = errors.New("is too large")
	// ErrInvalidPath: the name is not a clean relative path (fs.ValidPath).
	ErrInvalidPath = errors.New("is not a clean path inside the package")
)

// Root is an open package root.
type Root struct {
	dir  *os.File // the root directory, opened O_PATH
	path string   // where it is on the host, for errors
}

// Open opens the package mounted (or unpacked) at dir. The caller must
// Close it.
func Open(dir string) (*Root, error) {
	f, err := openRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open package at %s: %w", dir, err)
	}
	return &Root{dir: f, path: dir}, nil
}

// Close releases the root.
func (r *Root) Close() error { return r.dir.Close() }

// Path is the host path the root was opened at.
func (r *Root) Path() string { return r.path }

// ReadFile returns the content of the regular file name (a slash-separated
// path relative to the root), refusing it when it is larger than max bytes.
// A symlink, a FIFO, a device or a directory is refused without being
// opened for reading.
func (r *Root) ReadFile(name string, max int64) ([]byte, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(name, fi, max); err != nil {
		return nil, err
	}
	return r.readRegular(name, fi, max)
}

// checkRegular refuses what is not a regular file of at most max bytes.
func checkRegular(name string, fi fs.FileInfo, max int64) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s %w", name, ErrSymlink)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %w (it is %s)", name, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > max {
		return fmt.Errorf("%s %w: %d bytes, at most %d", name, ErrTooLarge, fi.Size(), max)
	}
	return nil
}

// Lstat describes name without following a symlink at its end; a symlink
// on the way to it is refused.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("%q %w", name, ErrInvalidPath)
	}
	return r.lstat(name)
}

// ReadLink returns the target of the symlink name; a symlink on the way to
// it is refused.
func (r *Root) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", fmt.Errorf("%q %w", name, ErrInvalidPath)
	}
	return r.readLink(name)
}

// FS returns the root as an fs.FS that also implements fs.StatFS and
// fs.ReadLinkFS, for checks such as manifest.CheckFiles that resolve
// symlinks themselves (and keep them inside). Stat does not follow a
// symlink: it refuses it. Open opens regular files and directories only.
func (r *Root) FS() fs.FS { return rootFS{r} }

type rootFS struct{ r *Root }

var _ interface {
	fs.StatFS
	fs.ReadLinkFS
} = rootFS{}

func (f rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fi, err := f.r.lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, fmt.Errorf("%s %w (it is %s)", name, ErrNotRegular, kind(fi.Mode()))
	}
	return f.r.open(name)
}

func (f rootFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := f.r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s %w", name, ErrSymlink)
	}
	return fi, nil
}

func (f rootFS) Lstat(name string) (fs.FileInfo, error) { return f.r.Lstat(name) }
func (f rootFS) ReadLink(name string) (string, error)   { return f.r.ReadLink(name) }

// kind names a file type for errors.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return "an irregular file"
}

// fileInfo is an fs.FileInfo from fstat.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sys   any
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.sys }
