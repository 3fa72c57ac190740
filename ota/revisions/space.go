package revisions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"paddock.dev/paddock/internal/diskfree"
)

// ErrNoSpace means a step would not fit on the disk; the step is refused
// before it writes anything.
var ErrNoSpace = errors.New("not enough disk space")

// SpaceMargin is the space a step must leave free on the disk after it, so
// that the agent's own small writes (its state, links, logs) still fit.
var SpaceMargin int64 = 1 << 20

// Space is what a filesystem has free for the agent.
type Space = diskfree.Space

// freeSpace returns what dir's filesystem has free for the agent.
var freeSpace = diskfree.Of

// checkSpace refuses a step that writes need bytes in files new inodes
// into dir, unless dir's filesystem has room for them and SpaceMargin more.
// what says what the step is, for the error.
func checkSpace(dir string, need, files int64, what string) error {
	sp, err := freeSpace(dir)
	if err != nil {
		return fmt.Errorf("cannot %s: cannot tell the free space of %s: %w", what, dir, err)
	}
	if need+SpaceMargin > sp.Bytes {
		return fmt.Errorf("cannot %s: %w: it needs %s and %s more kept free, %s is free on the disk of %s (free space, for example with 'paddock remove')",
			what, ErrNoSpace, formatBytes(need), formatBytes(SpaceMargin), formatBytes(max(sp.Bytes, 0)), dir)
	}
	if sp.Files >= 0 && files > sp.Files {
		return fmt.Errorf("cannot %s: %w: it needs %d files, the disk of %s has room for %d more (free space, for example with 'paddock remove')",
			what, ErrNoSpace, files, dir, sp.Files)
	}
	return nil
}

// treeSpace returns the space a copy of the tree at root takes on a
// filesystem of blocks of bsize bytes, counted without sharing or holes
// (a copy writes every byte), and how many files and folders it holds. A
// missing root takes one folder.
func treeSpace(root string, bsize int64) (bytes, files int64, err error) {
	blocks := func(n int64) int64 { return (n + bsize - 1) / bsize * bsize }
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return bsize, 1, nil
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		files++
		if !d.Type().IsRegular() {
			bytes += bsize // a folder's entries, a link's target
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		bytes += blocks(info.Size())
		return nil
	})
	return bytes, files, err
}

// formatBytes writes n as a person reads it: 512 B, 3.5 KiB, 12.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// checkCopySpace refuses to copy the tree src into the folder dst unless
// it fits there (see checkSpace).
func checkCopySpace(src, dst, what string) error {
	sp, err := freeSpace(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: cannot tell the free space of %s: %w", what, dst, err)
	}
	need, files, err := treeSpace(src, sp.BlockSize)
	if err != nil {
		return fmt.Errorf("cannot %s: cannot measure it: %w", what, err)
	}
	return checkSpace(dst, need, files, what)
}
