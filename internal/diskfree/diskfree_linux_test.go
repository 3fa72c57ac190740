package diskfree

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOf(t *testing.T) {
	dir := t.TempDir()
	sp, err := Of(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if sp.BlockSize != int64(st.Bsize) || sp.Bytes <= 0 || sp.Bytes%sp.BlockSize != 0 {
		t.Errorf("got %+v, want bytes a positive multiple of the block size %d", sp, st.Bsize)
	}
	_, err = Of(filepath.Join(dir, "none"))
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "statfs" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: got %v, want a statfs path error that it does not exist", err)
	}
}
