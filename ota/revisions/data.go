package revisions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Owner is the user and group that own an app's data: the app's own, so
// that it can write its data without being root.
type Owner struct {
	UID, GID int
}

// CreateData makes the writable data of revision rev of app name, and the
// app's common data, owned by owner (the user the revision runs as) and
// reachable by nobody else: the data tree above them belongs to root with
// mode 0700 (see SecureData). With from > 0 it starts as a copy of revision
// from's data (a refresh carries data forward), with the owners kept
// (unless revision from ran as another user: then it all goes to owner,
// see GiveData) and every setuid and setgid bit dropped; otherwise it
// starts empty. If the data of rev already exists it is kept as it is: a
// repeated call after a crash, or a revision that was installed before,
// keeps what the app wrote.
func CreateData(name string, rev, from int, owner Owner) error {
	if err := mkdirRoots(name); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	if err := GiveData(CommonDir(name), owner); err != nil {
		return err
	}
	if err := mkdirOwned(CommonDir(name), owner); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	dst := DataDir(name, rev)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	// Build the copy aside and rename it into place, so that a crash never
	// leaves a half-copied data directory under the final name; a failed
	// copy is removed, so that it holds no space.
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	if from > 0 {
		if err := checkCopySpace(DataDir(name, from), filepath.Dir(dst), fmt.Sprintf("copy the data of %s from revision %d", name, from)); err != nil {
			return err
		}
	}
	if err := createTmpData(name, from, tmp, owner); err != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			return errors.Join(err, fmt.Errorf("cannot remove the partial copy: %w", rerr))
		}
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	return syncDir(filepath.Dir(dst))
}

// createTmpData makes tmp as the data of a new revision, owned by owner: a
// copy of revision from's data, or empty.
func createTmpData(name string, from int, tmp string, owner Owner) error {
	if from > 0 {
		if err := copyTree(DataDir(name, from), tmp); err != nil {
			return fmt.Errorf("cannot copy data of %s from revision %d: %w", name, from, err)
		}
		if err := GiveData(tmp, owner); err != nil {
			return err
		}
	}
	if err := mkdirOwned(tmp, owner); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	return nil
}

// mkdirRoots makes the data root and the folder of app name in it, or
// takes those there, as root's with mode 0700.
func mkdirRoots(name string) error {
	appDir := filepath.Dir(CommonDir(name))
	if err := os.MkdirAll(filepath.Dir(filepath.Dir(appDir)), 0o755); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(appDir), appDir} {
		if err := mkdirOwned(dir, Owner{}); err != nil {
			return err
		}
	}
	return nil
}

// mkdirOwned makes dir, or takes the one there, as a directory of owner
// with mode 0700.
func mkdirOwned(dir string, owner Owner) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Lchown(dir, owner.UID, owner.GID); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// SecureData makes the data root and the folder of app name in it root's
// alone, with mode 0700, so that no other user reaches the app's data.
func SecureData(name string) error {
	if err := mkdirRoots(name); err != nil {
		return fmt.Errorf("cannot secure data of %s: %w", name, err)
	}
	return nil
}

// GiveData gives the data folder dir (a revision's, or the common one) and
// everything in it to owner, unless dir already belongs to owner: data
// written before apps had users of their own belonged to root, and an app
// whose new revision runs as another user (root, or no longer root) takes
// its data along. Changing the owner of a file drops its setuid and setgid
// bits. A missing dir is left missing.
func GiveData(dir string, owner Owner) error {
	err := chownTree(dir, owner)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot give data to the app's user: %w", err)
	}
	return nil
}

// chownTree gives every file under root to owner, unless root already
// belongs to owner (then the tree was given before, or made by the app).
func chownTree(root string, owner Owner) error {
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == owner.UID && int(st.Gid) == owner.GID {
		return nil
	}
	return chownBeneath(root, owner)
}

// RemoveData removes the data of revision rev of app name.
func RemoveData(name string, rev int) error {
	dst := DataDir(name, rev)
	for _, p := range []string{dst + ".tmp", dst} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("cannot remove data of %s revision %d: %w", name, rev, err)
		}
	}
	return nil
}

// RemoveCommonData removes the common data of app name, and its data
// directory when nothing else is left in it.
func RemoveCommonData(name string) error {
	if err := os.RemoveAll(CommonDir(name)); err != nil {
		return fmt.Errorf("cannot remove data of %s: %w", name, err)
	}
	if err := os.Remove(filepath.Dir(CommonDir(name))); err != nil && !os.IsNotExist(err) && !errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("cannot remove data of %s: %w", name, err)
	}
	return nil
}
