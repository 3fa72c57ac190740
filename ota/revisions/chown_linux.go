package revisions

import (
	"os"

	"golang.org/x/sys/unix"
)

// chownBeneath gives dir's contents, and then dir itself, to owner. It
// works through directory descriptors, never through path names below
// dir, and never follows a symlink: an app still running cannot swap a
// folder of its data for a symlink during the walk and have a host file
// chowned to it. dir is opened with O_NOFOLLOW too.
func chownBeneath(dir string, owner Owner) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	if err := chownDir(f, owner); err != nil {
		return err
	}
	return os.NewSyscallError("fchown", unix.Fchown(fd, owner.UID, owner.GID))
}

// chownDir gives everything in the open directory d to owner.
func chownDir(d *os.File, owner Owner) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	dfd := int(d.Fd())
	for _, name := range names {
		sub, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			f := os.NewFile(uintptr(sub), d.Name()+"/"+name)
			err = chownDir(f, owner)
			f.Close()
			if err != nil {
				return err
			}
		} else if err != unix.ENOTDIR && err != unix.ELOOP && err != unix.ENOENT {
			return &os.PathError{Op: "openat", Path: d.Name() + "/" + name, Err: err}
		}
		// The entry itself (a file, a symlink, a FIFO, or the folder just
		// walked), never what a symlink points at.
		err = unix.Fchownat(dfd, name, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.ENOENT {
			return &os.PathError{Op: "fchownat", Path: d.Name() + "/" + name, Err: err}
		}
	}
	return nil
}
