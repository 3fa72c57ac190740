package devacl

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// mu serializes the read-modify-write of a node's ACL within the agent
// (two apps may be granted the same node at once).
var mu sync.Mutex

// Grant gives uid the permission perm on the device node at path (a
// symlink is not followed: the caller resolves by-id links), keeping every
// other entry. Granting again is cheap: nothing is written when the entry
// is already there.
func Grant(path string, uid int, perm uint16) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	a, err := read(path)
	if err != nil {
		return fmt.Errorf("cannot give uid %d access to %s: %w", uid, path, err)
	}
	if p, ok := a.User(uint32(uid)); ok && p == perm&7 {
		return nil
	}
	a.SetUser(uint32(uid), perm)
	if err := write(path, a); err != nil {
		return fmt.Errorf("cannot give uid %d access to %s: %w", uid, path, err)
	}
	return nil
}

// Revoke takes uid's entry off the device node at path, if it has one; a
// node that is gone has nothing to revoke. With no named entry left the
// node is back to its mode alone.
func Revoke(path string, uid int) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	a, err := read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot take access to %s from uid %d: %w", path, uid, err)
	}
	if _, ok := a.User(uint32(uid)); !ok {
		return nil
	}
	a.RemoveUser(uint32(uid))
	if err := write(path, a); err != nil {
		return fmt.Errorf("cannot take access to %s from uid %d: %w", path, uid, err)
	}
	return nil
}

// Get returns the access ACL of the device node at path: its attribute,
// or the one its mode says.
func Get(path string) (*ACL, error) {
	return read(path)
}

func checkUID(uid int) error {
	if uid <= 0 || int64(uid) >= undefID {
		return fmt.Errorf("internal error: uid %d is not an app's own user", uid)
	}
	return nil
}

// read returns the ACL of the node at path, refusing anything but a
// character or block device: an ACL entry must never open a file, a
// directory or a link's target to an app.
func read(path string) (*ACL, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
		return nil, fmt.Errorf("%s is not a device node", path)
	}
	buf := make([]byte, 4+8*32)
	for {
		n, err := unix.Lgetxattr(path, XattrName, buf)
		switch {
		case errors.Is(err, unix.ENODATA):
			return FromMode(st.Mode), nil
		case errors.Is(err, unix.ERANGE) && len(buf) < 4+8*maxEntries:
			buf = make([]byte, 4+8*maxEntries)
			continue
		case errors.Is(err, unix.EOPNOTSUPP):
			return nil, fmt.Errorf("the filesystem of %s has no POSIX ACLs (the kernel needs CONFIG_TMPFS_POSIX_ACL for devtmpfs)", path)
		case err != nil:
			return nil, os.NewSyscallError("lgetxattr", err)
		}
		return Parse(buf[:n])
	}
}

func write(path string, a *ACL) error {
	err := unix.Lsetxattr(path, XattrName, a.Encode(), 0)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("the filesystem of %s has no POSIX ACLs (the kernel needs CONFIG_TMPFS_POSIX_ACL for devtmpfs)", path)
	}
	if err != nil {
		return os.NewSyscallError("lsetxattr", err)
	}
	return nil
}
