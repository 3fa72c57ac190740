package revisions

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much is written before its writeback is started.
const writebackChunk = 8 << 20

// writeback writes to a file and starts the writeback of every full chunk as
// it goes, so that the final fsync has little left to wait for: the disk
// works while the next chunk is hashed.
type writeback struct {
	f         *os.File
	off, sent int64
}

func newWriteback(f *os.File) *writeback { return &writeback{f: f} }

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.sent >= writebackChunk {
		// Best effort: fsync later is what makes the data durable.
		unix.SyncFileRange(int(w.f.Fd()), w.sent, w.off-w.sent, unix.SYNC_FILE_RANGE_WRITE)
		w.sent = w.off
	}
	return n, err
}
