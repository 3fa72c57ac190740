// Package diskfree tells what a filesystem has free for the agent: the
// state's reserve, the app revisions' space checks and the fleet metrics
// read it the same way.
package diskfree

// Space is what a filesystem has free for a process that does not use
// root's reserved blocks: the agent leaves those for when all else is full.
type Space struct {
	// Bytes and Files are the bytes and inodes available; Files is -1 when
	// the filesystem does not count inodes (btrfs, some FUSE filesystems).
	Bytes, Files int64
	// BlockSize is the unit in which files take space.
	BlockSize int64
}
