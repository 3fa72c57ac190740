package revisions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CreateData makes the writable data of revision rev of app name, and the
// app's common data. With from > 0 it starts as a copy of revision from's
// data (a refresh carries data forward); otherwise it starts empty. If the
// data of rev already exists it is kept as it is: a repeated call after a
// crash, or a revision that was installed before, keeps what the app wrote.
func CreateData(name string, rev, from int) error {
	if err := os.MkdirAll(CommonDir(name), 0o755); err != nil {
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
	if err := createTmpData(name, from, tmp); err != nil {
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

// createTmpData makes tmp as the data of a new revision: a copy of
// revision from's data, or empty.
func createTmpData(name string, from int, tmp string) error {
	if from > 0 {
		if err := copyTree(DataDir(name, from), tmp); err != nil {
			return fmt.Errorf("cannot copy data of %s from revision %d: %w", name, from, err)
		}
	} else if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("cannot create data of %s: %w", name, err)
	}
	return nil
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
