package baseupdate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"paddock.dev/paddock/ota/assert"
)

// Sentinel errors of Run, for callers that tell them apart.
var (
	// ErrInUse: the slot is the running one, mounted, or held by another
	// device (dm-verity over the running base): it is never written.
	ErrInUse = errors.New("slot in use")
	// ErrBadChunk: a chunk from the source kept arriving corrupt.
	ErrBadChunk = errors.New("corrupt chunk")
	// ErrReadBack: the slot did not read back as written.
	ErrReadBack = errors.New("slot does not read back as written")
)

// Update writes one base image into a slot.
type Update struct {
	// Base is the checked base-revision of the image (trust.CheckBase).
	Base *assert.BaseRevision
	// Slot is the device of the inactive slot (a file in tests).
	Slot string
	// Running is the device of the running slot: never written, and
	// where chunks the image shares with it are copied from. "" when
	// there is none to copy from.
	Running string
	// RunningChunks are the chunk digests of the running slot's image
	// (from its base-revision), in chunks of RunningChunkSize; nil to
	// copy nothing.
	RunningChunks    []string
	RunningChunkSize int64
	// Checkpoint is the file where the update records how far it got.
	Checkpoint string
	// Source gives the image's bytes.
	Source Source
	// Retries is how many times a chunk that arrives corrupt is fetched
	// again before the update gives up.
	Retries int
	// SyncEvery is how many bytes are written between two syncs of the
	// slot, each followed by a checkpoint (at least one chunk); 0 means
	// DefaultSyncEvery. A cut loses at most this much of the work.
	SyncEvery int64
	// Progress, when set, is called with the bytes verified so far and
	// the image's size.
	Progress func(done, total int64)
}

// Result says how an update went.
type Result struct {
	Size int64 `json:"size"`
	// Resumed is how many bytes an earlier, interrupted run had written
	// and verified already.
	Resumed int64 `json:"resumed"`
	// Downloaded and Copied are the bytes this run received from the
	// source (corrupt chunks and cut transfers included) and copied from
	// the running slot.
	Downloaded int64 `json:"downloaded"`
	Copied     int64 `json:"copied"`
	// TotalDownloaded and TotalCopied are the bytes of the image that
	// came from the source and from the running slot, over every run.
	TotalDownloaded int64 `json:"total-downloaded"`
	TotalCopied     int64 `json:"total-copied"`
}

// Run writes the image into the slot (Write), then reads it back and
// checks it (Verify).
func (u *Update) Run(ctx context.Context) (*Result, error) {
	res, err := u.Write(ctx)
	if err != nil {
		return res, err
	}
	return res, u.Verify()
}

// Write writes the image into the slot, from the checkpoint of an earlier
// run of the same image and slot on: each chunk is checked against the
// base-revision before it is written; every SyncEvery bytes the batch
// written is synced, read back from the medium and checked against the
// base-revision, and the checkpoint recorded, while the next batch is
// written. A chunk that reads back wrong fails the write (ErrReadBack) and
// moves the checkpoint back to it. The running slot, or a slot that is
// mounted or held, is refused (ErrInUse) before anything is written.
func (u *Update) Write(ctx context.Context) (*Result, error) {
	if err := u.check(); err != nil {
		return nil, err
	}
	if err := checkNotInUse(u.Slot, u.Running); err != nil {
		return nil, err
	}
	f, err := openSlot(u.Slot, u.Base.Size)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := u.newWriter(f)
	res := &Result{Size: u.Base.Size, Resumed: min(w.cp.Verified*u.Base.ChunkSize, u.Base.Size)}
	if err := w.startReadBack(); err != nil {
		return res, err
	}
	defer func() {
		res.Downloaded, res.Copied = w.received, w.copiedNow
		res.TotalDownloaded, res.TotalCopied = w.cp.Downloaded, w.cp.Copied
	}()
	defer w.rb.close()
	if err := u.write(ctx, w); err != nil {
		return res, err
	}
	return res, w.sync()
}

// Verify confirms that the whole slot was read back from the medium and
// checked against the base-revision (whose signed chunk list covers the
// whole image): the checkpoint of a finished Write says so. Without one,
// it reads the whole slot back (the slot's cached pages are dropped
// first) and checks each chunk, on every CPU. A chunk that reads back
// wrong moves the checkpoint back to it, so that the next Write writes it
// again.
func (u *Update) Verify() error {
	if err := u.check(); err != nil {
		return err
	}
	if cp := loadCheckpoint(u.Checkpoint, u.Base.SHA256, u.Slot); cp.ReadBack && cp.Verified == int64(len(u.Base.Chunks)) {
		return nil
	}
	f, err := os.Open(u.Slot)
	if err != nil {
		return fmt.Errorf("cannot read back slot %s: %w", u.Slot, err)
	}
	defer f.Close()
	// Read the medium, not the page cache: the pages written are clean
	// (synced) and can be dropped.
	dropCache(f, u.Base.Size)
	bad, err := verifyChunks(f, u.Base)
	if err != nil {
		return fmt.Errorf("cannot read back slot %s: %w", u.Slot, err)
	}
	if bad < 0 {
		return nil
	}
	cp := loadCheckpoint(u.Checkpoint, u.Base.SHA256, u.Slot)
	cp.Verified = min(cp.Verified, bad)
	if err := cp.save(u.Checkpoint); err != nil {
		return err
	}
	return fmt.Errorf("cannot update the base: chunk %d of slot %s: %w (the next try writes it again)", bad+1, u.Slot, ErrReadBack)
}

// verifyChunks checks the chunks of f against rev with one worker per
// CPU, and returns the first chunk that differs, or -1.
func verifyChunks(f io.ReaderAt, rev *assert.BaseRevision) (int64, error) {
	n := int64(len(rev.Chunks))
	workers := int64(max(1, min(runtime.NumCPU(), 8)))
	var next atomic.Int64
	first := atomic.Int64{}
	first.Store(n)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, rev.ChunkSize)
			for {
				i := next.Add(1) - 1
				if i >= n || i >= first.Load() {
					return
				}
				b := buf[:min(rev.ChunkSize, rev.Size-i*rev.ChunkSize)]
				if _, err := f.ReadAt(b, i*rev.ChunkSize); err != nil {
					errs[w] = fmt.Errorf("chunk %d: %w", i+1, err)
					return
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != rev.Chunks[i] {
					for {
						cur := first.Load()
						if i >= cur || first.CompareAndSwap(cur, i) {
							break
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if bad := first.Load(); bad < n {
		return bad, nil
	}
	return -1, nil
}

func (u *Update) check() error {
	switch {
	case u.Base == nil || len(u.Base.Chunks) == 0 || u.Base.ChunkSize <= 0:
		return errors.New("internal error: update without a base-revision")
	case u.Slot == "" || u.Checkpoint == "" || u.Source == nil:
		return errors.New("internal error: update without a slot, checkpoint or source")
	}
	return nil
}

// write fills the slot from the first chunk not verified yet.
func (u *Update) write(ctx context.Context, w *chunkWriter) error {
	n := int64(len(u.Base.Chunks))
	local := u.localIndex()
	retries := map[int64]int{}
	for w.next < n {
		if off, ok := local[u.Base.Chunks[w.next]]; ok && w.copyLocal(off) {
			continue
		}
		end := w.next + 1
		for end < n {
			if _, ok := local[u.Base.Chunks[end]]; ok {
				break
			}
			end++
		}
		from := w.next * u.Base.ChunkSize
		err := u.Source.Fetch(ctx, from, min(end*u.Base.ChunkSize, u.Base.Size), w)
		var bad *badChunkError
		switch {
		case errors.As(err, &bad):
			if retries[bad.index]++; retries[bad.index] > u.Retries {
				w.sync()
				return fmt.Errorf("cannot update the base: chunk %d of %s from %s: %w (the source serves a corrupt image; fix it or use another)",
					bad.index+1, u.Base.Name, u.Source, bad)
			}
		case err != nil:
			// What was verified is kept: the next run resumes there.
			if serr := w.sync(); serr != nil {
				return serr
			}
			return fmt.Errorf("cannot update the base: %w", err)
		}
	}
	return nil
}

// localIndex maps the digests of the running slot's chunks to their
// offsets, when its chunks are the same size as the image's.
func (u *Update) localIndex() map[string]int64 {
	if u.Running == "" || u.RunningChunkSize != u.Base.ChunkSize {
		return nil
	}
	idx := make(map[string]int64, len(u.RunningChunks))
	for i, c := range u.RunningChunks {
		if _, ok := idx[c]; !ok {
			idx[c] = int64(i) * u.RunningChunkSize
		}
	}
	return idx
}

// badChunkError is a chunk whose digest is not the base-revision's.
type badChunkError struct {
	index     int64
	got, want string
}

func (e *badChunkError) Error() string {
	return fmt.Sprintf("sha256 %s, want %s", e.got, e.want)
}

func (e *badChunkError) Unwrap() error { return ErrBadChunk }

// chunkWriter takes the image's bytes in order from the chunk after the
// last verified one, checks each chunk and writes it to the slot; every
// SyncEvery bytes it hands the batch written to a reader that, behind the
// write frontier, syncs it, reads it back from the medium, checks it and
// records the checkpoint (readBack).
type chunkWriter struct {
	u    *Update
	f    *os.File
	cp   checkpoint // owned by the reader once it runs
	next int64      // the chunk being filled
	buf  []byte
	fill int
	// batchFrom is the first chunk of the batch not handed to the
	// reader yet; unsynced counts its bytes, and pending the
	// downloaded and copied bytes of its chunks.
	batchFrom                        int64
	unsynced                         int64
	pendingDownloaded, pendingCopied int64
	received, copiedNow              int64
	rb                               *readBack
}

func (u *Update) newWriter(f *os.File) *chunkWriter {
	cp := loadCheckpoint(u.Checkpoint, u.Base.SHA256, u.Slot)
	if cp.Verified > int64(len(u.Base.Chunks)) || !cp.ReadBack {
		cp = checkpoint{SHA256: u.Base.SHA256, Slot: u.Slot}
	}
	cp.ReadBack = true
	return &chunkWriter{u: u, f: f, cp: cp, next: cp.Verified, batchFrom: cp.Verified, buf: alignedBuffer(int(u.Base.ChunkSize))}
}

// chunkLen is the length of chunk i.
func (w *chunkWriter) chunkLen(i int64) int {
	cs := w.u.Base.ChunkSize
	return int(min(cs, w.u.Base.Size-i*cs))
}

// Write takes the next bytes of the image.
func (w *chunkWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if w.next >= int64(len(w.u.Base.Chunks)) {
			return n, errors.New("internal error: more bytes than the image holds")
		}
		want := w.chunkLen(w.next)
		k := copy(w.buf[w.fill:want], b)
		w.fill += k
		b = b[k:]
		n += k
		w.received += int64(k)
		if w.fill == want {
			if err := w.commit(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// commit checks the filled chunk, writes it, and hands the batch to the
// reader when SyncEvery bytes are written.
func (w *chunkWriter) commit(copied bool) error {
	i, b := w.next, w.buf[:w.chunkLen(w.next)]
	w.fill = 0
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), w.u.Base.Chunks[i]; got != want {
		return &badChunkError{index: i, got: got, want: want}
	}
	if err := w.rb.failed(); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(b, i*w.u.Base.ChunkSize); err != nil {
		return fmt.Errorf("cannot write slot %s: %w", w.u.Slot, err)
	}
	w.next++
	w.unsynced += int64(len(b))
	if copied {
		w.pendingCopied += int64(len(b))
		w.copiedNow += int64(len(b))
	} else {
		w.pendingDownloaded += int64(len(b))
	}
	if w.unsynced >= w.syncEvery() {
		return w.handOff()
	}
	return nil
}

// copyLocal copies the next chunk from the running slot at off, and
// reports whether it was the chunk wanted.
func (w *chunkWriter) copyLocal(off int64) bool {
	f, err := os.Open(w.u.Running)
	if err != nil {
		return false
	}
	defer f.Close()
	n := w.chunkLen(w.next)
	if _, err := f.ReadAt(w.buf[:n], off); err != nil {
		return false
	}
	w.fill = n
	if err := w.commit(true); err != nil {
		w.fill = 0
		return false
	}
	return true
}

// handOff gives the batch written since the last one to the reader.
func (w *chunkWriter) handOff() error {
	if w.next == w.batchFrom {
		return w.rb.failed()
	}
	b := batch{from: w.batchFrom, to: w.next, downloaded: w.pendingDownloaded, copied: w.pendingCopied}
	w.batchFrom, w.unsynced, w.pendingDownloaded, w.pendingCopied = w.next, 0, 0, 0
	return w.rb.add(b)
}

// sync hands the last batch to the reader and waits until every batch is
// synced, read back, checked and recorded in the checkpoint.
func (w *chunkWriter) sync() error {
	w.handOff()
	return w.rb.close()
}

// batch is a stretch of chunks [from, to) written to the slot and not yet
// synced and read back.
type batch struct {
	from, to           int64
	downloaded, copied int64
}

// readBack syncs the batches written, reads them back from the medium
// (their cached pages dropped), checks each chunk against the
// base-revision and records the checkpoint: the write of the next batch
// goes on meanwhile.
type readBack struct {
	w *chunkWriter
	r *os.File
	// queue takes the batches written to the syncer, synced the
	// batches synced to the reader.
	queue, synced chan batch
	done          chan struct{}
	closed        bool // by the writer
	mu            sync.Mutex
	err           error
}

// readBackQueue is how many written batches may wait for the reader.
const readBackQueue = 2

// afterSync, when set (by tests), is called with the chunks of a batch
// after it is synced and before it is read back.
var afterSync func(from, to int64)

func (w *chunkWriter) startReadBack() error {
	r, err := os.Open(w.u.Slot)
	if err != nil {
		return fmt.Errorf("cannot read back slot %s: %w", w.u.Slot, err)
	}
	rb := &readBack{w: w, r: r, queue: make(chan batch, readBackQueue), synced: make(chan batch, readBackQueue), done: make(chan struct{})}
	w.rb = rb
	go rb.sync()
	go rb.run()
	return nil
}

func (rb *readBack) failed() error {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.err
}

func (rb *readBack) fail(err error) {
	rb.mu.Lock()
	if rb.err == nil {
		rb.err = err
	}
	rb.mu.Unlock()
}

func (rb *readBack) add(b batch) error {
	if err := rb.failed(); err != nil {
		return err
	}
	if rb.closed {
		return errors.New("internal error: a batch written after the last")
	}
	rb.queue <- b
	return nil
}

// close waits for the batches handed over, and returns the first error.
func (rb *readBack) close() error {
	if !rb.closed {
		rb.closed = true
		close(rb.queue)
		<-rb.done
		rb.r.Close()
	}
	return rb.failed()
}

// sync syncs the batches written, in order, and hands them to the reader:
// the sync of a batch waits for the medium while the one before is read
// back.
func (rb *readBack) sync() {
	defer close(rb.synced)
	w := rb.w
	for b := range rb.queue {
		if rb.failed() != nil {
			continue // drain
		}
		if err := w.f.Sync(); err != nil {
			rb.fail(fmt.Errorf("cannot sync slot %s: %w", w.u.Slot, err))
			continue
		}
		if afterSync != nil {
			afterSync(b.from, b.to)
		}
		rb.synced <- b
	}
}

// run reads back the batches synced, checks them and records the
// checkpoint, in order.
func (rb *readBack) run() {
	defer close(rb.done)
	w, rev := rb.w, rb.w.u.Base
	buf := alignedBuffer(int(rev.ChunkSize))
	for b := range rb.synced {
		if rb.failed() != nil {
			continue // drain
		}
		from, to := b.from*rev.ChunkSize, min(b.to*rev.ChunkSize, rev.Size)
		// Read the medium, not the page cache: the pages written are
		// clean (synced) and can be dropped.
		dropRange(rb.r, from, to-from)
		bad := int64(-1)
		for i := b.from; i < b.to; i++ {
			c := buf[:w.chunkLen(i)]
			if _, err := rb.r.ReadAt(c, i*rev.ChunkSize); err != nil {
				rb.fail(fmt.Errorf("cannot read back slot %s: chunk %d: %w", w.u.Slot, i+1, err))
				break
			}
			sum := sha256.Sum256(c)
			if hex.EncodeToString(sum[:]) != rev.Chunks[i] {
				bad = i
				break
			}
		}
		if rb.failed() != nil {
			continue
		}
		if bad >= 0 {
			// The chunks before the bad one read back right.
			w.cp.Verified = bad
			if err := w.cp.save(w.u.Checkpoint); err != nil {
				rb.fail(err)
				continue
			}
			rb.fail(fmt.Errorf("cannot update the base: chunk %d of slot %s: %w (the next try writes it again)", bad+1, w.u.Slot, ErrReadBack))
			continue
		}
		w.cp.Verified = b.to
		w.cp.Downloaded += b.downloaded
		w.cp.Copied += b.copied
		if err := w.cp.save(w.u.Checkpoint); err != nil {
			rb.fail(err)
			continue
		}
		if w.u.Progress != nil {
			w.u.Progress(to, rev.Size)
		}
	}
}

// DefaultSyncEvery is how many bytes an update writes between two syncs
// and checkpoints, unless told otherwise: a sync after every 1 MiB chunk
// costs two thirds of the throughput on a loop device (31 against 47
// MiB/s, make bench), and 8 MiB is under 3% of a 300 MiB base to write
// again after a cut.
const DefaultSyncEvery = 8 << 20

func (w *chunkWriter) syncEvery() int64 {
	if w.u.SyncEvery > 0 {
		return w.u.SyncEvery
	}
	return DefaultSyncEvery
}
