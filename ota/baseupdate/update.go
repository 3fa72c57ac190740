package baseupdate

import (
	"bytes"
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
	"syscall"
	"time"
	"unsafe"

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
	// SyncEvery bounds the work a power cut loses: the bytes taken from
	// the source and not yet in the checkpoint (synced) are at most this
	// many (or two batches, when it is less). The slot is written and
	// read back in batches of half of it, up to 4 MiB, one while the next
	// arrives, and synced and recorded when the next two batches would
	// take the bytes not recorded past SyncEvery, or 2 s after the last
	// record. (A process killed loses less: the next Write finds the
	// chunks written after the checkpoint on the slot.) 0 means
	// DefaultSyncEvery.
	SyncEvery int64
	// Progress, when set, is called with the bytes verified so far and
	// the image's size.
	Progress func(done, total int64)
}

// Result says how an update went.
type Result struct {
	Size int64 `json:"size"`
	// Resumed is how many bytes an earlier, interrupted run had written
	// and verified already: those its checkpoint covers, and Found.
	Resumed int64 `json:"resumed"`
	// Found is how many of them the slot held beyond the checkpoint
	// (written after it, or there before), read back and checked.
	Found int64 `json:"found"`
	// Downloaded and Copied are the bytes this run received from the
	// source (corrupt chunks and cut transfers included) and copied from
	// the running slot.
	Downloaded int64 `json:"downloaded"`
	Copied     int64 `json:"copied"`
	// TotalDownloaded and TotalCopied are the bytes of the image that
	// came from the source and from the running slot, over every run;
	// the chunks found on the slot are counted as a write gets them
	// (copied when the running slot holds them), since the try that
	// wrote them was cut before it could count them.
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
// run of the same image and slot on, extended over the chunks the slot
// holds already beyond it (scan): each chunk is checked against the
// base-revision as it arrives; each batch is written (O_DIRECT where the
// slot takes it), read back from the medium (O_DIRECT, or synced and
// with its cached pages dropped) and checked against the base-revision
// while the next batch arrives, and the checkpoint recorded after a sync
// as SyncEvery says. A chunk that reads back wrong fails the write (ErrReadBack) and
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
	w := u.newWriter()
	res := &Result{Size: u.Base.Size}
	found, err := w.scan(f)
	if err != nil {
		return res, err
	}
	res.Resumed, res.Found = min(w.cp.Verified*u.Base.ChunkSize, u.Base.Size), found
	if err := w.startSlotWriter(f); err != nil {
		return res, err
	}
	defer func() {
		res.Downloaded, res.Copied = w.received, w.copiedNow
		res.TotalDownloaded, res.TotalCopied = w.cp.Downloaded, w.cp.Copied
	}()
	defer w.sw.close()
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
	bad, err := firstBadChunk(f, u.Base, 0, false)
	if err != nil {
		return fmt.Errorf("cannot read back slot %s: %w", u.Slot, err)
	}
	if bad == int64(len(u.Base.Chunks)) {
		return nil
	}
	cp := loadCheckpoint(u.Checkpoint, u.Base.SHA256, u.Slot)
	cp.Verified = min(cp.Verified, bad)
	if err := cp.save(u.Checkpoint); err != nil {
		return err
	}
	return fmt.Errorf("cannot update the base: chunk %d of slot %s: %w (the next try writes it again)", bad+1, u.Slot, ErrReadBack)
}

// firstBadChunk checks the chunks of r from chunk from on against rev,
// with one worker per CPU, and returns the first that differs, or the
// number of chunks when none does: the workers take the chunks in order
// and stop at the first that differs, reading at most one chunk each
// beyond it. With readErrBad, a chunk that cannot be read (the slot ends
// before it) differs; else the read error is returned.
func firstBadChunk(r io.ReaderAt, rev *assert.BaseRevision, from int64, readErrBad bool) (int64, error) {
	n := int64(len(rev.Chunks))
	workers := int64(max(1, min(runtime.NumCPU(), 8)))
	var next atomic.Int64
	next.Store(from)
	first := atomic.Int64{}
	first.Store(n)
	found := func(i int64) {
		for {
			cur := first.Load()
			if i >= cur || first.CompareAndSwap(cur, i) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			// Aligned, for a reader with O_DIRECT (mediumReader).
			buf := alignedBuffer(int(rev.ChunkSize))
			for {
				i := next.Add(1) - 1
				if i >= n || i >= first.Load() {
					return
				}
				b := buf[:min(rev.ChunkSize, rev.Size-i*rev.ChunkSize)]
				if _, err := r.ReadAt(b, i*rev.ChunkSize); err != nil {
					if readErrBad {
						found(i)
						continue
					}
					errs[w] = fmt.Errorf("chunk %d: %w", i+1, err)
					return
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != rev.Chunks[i] {
					found(i)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return first.Load(), nil
}

// mediumReader reads a slot from the medium: with O_DIRECT (d) where the
// slot takes it, else through the page cache (f) once the range's clean
// pages are dropped. The slot is synced before, so that no page is dirty.
type mediumReader struct{ d, f *os.File }

func (m mediumReader) ReadAt(b []byte, off int64) (int, error) {
	if m.d != nil && isAligned(b, off) {
		n, err := m.d.ReadAt(b, off)
		if !errors.Is(err, syscall.EINVAL) {
			return n, err
		}
	}
	dropRange(m.f, off, int64(len(b)))
	return m.f.ReadAt(b, off)
}

// scan extends the verified chunks of the checkpoint over the chunks the
// slot already holds beyond it, read from the medium and checked against
// the base-revision, in order, up to the first that differs: the chunks
// an earlier try wrote after its last checkpoint (before it was killed or
// the power went), or that the slot held already. A chunk whose digest is
// the signed one is the image's, however it got there; one that a cut
// lost differs, and is written again. f is the slot opened for writing:
// it is synced first, so that what the scan reads is on the medium, and
// the checkpoint recorded after the scan covers only synced chunks. It
// returns the bytes found.
func (w *chunkWriter) scan(f *os.File) (int64, error) {
	rev, from := w.u.Base, w.cp.Verified
	if from >= int64(len(rev.Chunks)) {
		return 0, nil
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("cannot sync slot %s: %w", w.u.Slot, err)
	}
	r, err := os.Open(w.u.Slot)
	if err != nil {
		return 0, fmt.Errorf("cannot read back slot %s: %w", w.u.Slot, err)
	}
	defer r.Close()
	m := mediumReader{f: r}
	if d := openDirect(w.u.Slot, os.O_RDONLY); d != nil {
		defer d.Close()
		m.d = d
	}
	to, err := firstBadChunk(m, rev, from, true)
	if err != nil || to == from {
		return 0, err
	}
	// The totals over every run count a found chunk as the writer gets
	// it: copied when the running slot holds it, else downloaded. (A try
	// cut after it wrote its chunks and before its checkpoint leaves
	// them to this scan; without this, the totals lost them.)
	local := w.u.localIndex()
	for i := from; i < to; i++ {
		n := int64(w.chunkLen(i))
		if _, ok := local[rev.Chunks[i]]; ok {
			w.cp.Copied += n
		} else {
			w.cp.Downloaded += n
		}
	}
	w.cp.Verified, w.next = to, to
	if err := w.cp.save(w.u.Checkpoint); err != nil {
		return 0, err
	}
	return min(to*rev.ChunkSize, rev.Size) - from*rev.ChunkSize, nil
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
// last verified one and checks each chunk as it completes, into a batch
// of chunks in memory; a full batch goes to the slot writer (slotWriter),
// which writes it, syncs it, reads it back from the medium, checks it and
// records the checkpoint while the next batch arrives.
type chunkWriter struct {
	u    *Update
	cp   checkpoint // owned by the slot writer once it runs
	next int64      // the chunk being filled
	fill int        // its bytes received
	cur  *batch     // the batch being filled
	// per is how many chunks a batch holds; span how many the checkpoint
	// lags at most behind the chunks received (SyncEvery).
	per, span           int64
	received, copiedNow int64
	sw                  *slotWriter
}

func (u *Update) newWriter() *chunkWriter {
	cp := loadCheckpoint(u.Checkpoint, u.Base.SHA256, u.Slot)
	if cp.Verified > int64(len(u.Base.Chunks)) || !cp.ReadBack {
		cp = checkpoint{SHA256: u.Base.SHA256, Slot: u.Slot}
	}
	cp.ReadBack = true
	// The batches received and not yet in the checkpoint are together
	// no more than SyncEvery (slotWriter.due).
	per := max(1, min(u.syncEvery()/2, maxBatch)/u.Base.ChunkSize)
	span := max(u.syncEvery()/u.Base.ChunkSize, 2*per)
	return &chunkWriter{u: u, cp: cp, next: cp.Verified, per: per, span: span}
}

// chunkLen is the length of chunk i.
func (w *chunkWriter) chunkLen(i int64) int {
	cs := w.u.Base.ChunkSize
	return int(min(cs, w.u.Base.Size-i*cs))
}

// chunk returns the bytes of chunk i in the batch being filled, which it
// starts when there is none.
func (w *chunkWriter) chunk(i int64) []byte {
	if w.cur == nil {
		w.cur = <-w.sw.free
		w.cur.from, w.cur.to, w.cur.downloaded, w.cur.copied = w.next, w.next, 0, 0
	}
	off := (i - w.cur.from) * w.u.Base.ChunkSize
	return w.cur.buf[off : off+int64(w.chunkLen(i))]
}

// Write takes the next bytes of the image.
func (w *chunkWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if w.next >= int64(len(w.u.Base.Chunks)) {
			return n, errors.New("internal error: more bytes than the image holds")
		}
		c := w.chunk(w.next)
		k := copy(c[w.fill:], b)
		w.fill += k
		b = b[k:]
		n += k
		w.received += int64(k)
		if w.fill == len(c) {
			if err := w.commit(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// ReadFrom takes the next bytes of the image from r until it ends, read
// straight into the batch (a copy fewer than Write).
func (w *chunkWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if w.next >= int64(len(w.u.Base.Chunks)) {
			// The image is complete: r must end here.
			var one [1]byte
			if n, _ := io.ReadFull(r, one[:]); n > 0 {
				return total, errors.New("internal error: more bytes than the image holds")
			}
			return total, nil
		}
		c := w.chunk(w.next)
		n, err := r.Read(c[w.fill:])
		w.fill += n
		w.received += int64(n)
		total += int64(n)
		if w.fill == len(c) {
			if err := w.commit(false); err != nil {
				return total, err
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// commit checks the filled chunk, adds it to the batch, and hands the
// batch to the slot writer when it is full.
func (w *chunkWriter) commit(copied bool) error {
	i, b := w.next, w.chunk(w.next)
	w.fill = 0
	sum := sha256.Sum256(b)
	if got, want := hex.EncodeToString(sum[:]), w.u.Base.Chunks[i]; got != want {
		return &badChunkError{index: i, got: got, want: want}
	}
	if err := w.sw.failed(); err != nil {
		return err
	}
	w.next++
	w.cur.to = w.next
	if copied {
		w.cur.copied += int64(len(b))
		w.copiedNow += int64(len(b))
	} else {
		w.cur.downloaded += int64(len(b))
	}
	if w.cur.to-w.cur.from == w.per {
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
	c := w.chunk(w.next)
	if _, err := f.ReadAt(c, off); err != nil {
		return false
	}
	w.fill = len(c)
	if err := w.commit(true); err != nil {
		w.fill = 0
		return false
	}
	return true
}

// handOff gives the batch filled to the slot writer.
func (w *chunkWriter) handOff() error {
	if w.cur == nil || w.cur.to == w.cur.from {
		return w.sw.failed()
	}
	b := w.cur
	w.cur = nil
	return w.sw.add(b)
}

// sync hands the last batch to the slot writer and waits until every
// batch is written, synced, read back, checked and recorded in the
// checkpoint.
func (w *chunkWriter) sync() error {
	w.handOff()
	return w.sw.close()
}

// batch is a stretch of chunks [from, to), checked, in buf; back is where
// it is read back, and synced gives the result of its sync.
type batch struct {
	from, to           int64
	buf, back          []byte
	downloaded, copied int64
	// record says to sync the slot after b and record the checkpoint.
	record bool
	synced chan error
}

// slotWriter writes each batch to the slot, reads it back from the medium
// and syncs it when due (its I/O goroutine), and compares each chunk read
// back with the one written (its check goroutine, while the batch is
// synced), then records the checkpoint when due. Two batches are in its
// hands or arriving at most: while one is checked, the next is written
// and read back, or arrives.
type slotWriter struct {
	w *chunkWriter
	// f is the slot opened for writing (O_EXCL for a device), r for
	// reading; d and rd with O_DIRECT, or nil when the slot does not
	// take it: aligned writes through d reach the device before they
	// return, and reads through rd read the medium, past the page cache.
	f, r, d, rd *os.File
	rec         *recorder
	// work takes the batches filled, in order, to the I/O goroutine,
	// check from it to the check goroutine; free gives them back.
	work, check, free chan *batch
	done              chan struct{}
	closed            bool // by the chunk writer
	// recordTo is the end of the last batch to be recorded, and when it
	// was chosen (the I/O goroutine's).
	recordTo   int64
	recordTime time.Time
	// pendingTo is the end of the batches read back right and not yet
	// recorded, pendingDown and pendingCopied their bytes (the check
	// goroutine's).
	pendingTo, pendingDown, pendingCopied int64
	mu                                    sync.Mutex
	err                                   error
}

// afterWrite, when set (by tests), is called with the chunks of a batch
// after it is written (and synced, when the read-back goes through the
// page cache) and before it is read back.
var afterWrite func(from, to int64)

func (w *chunkWriter) startSlotWriter(f *os.File) error {
	r, err := os.Open(w.u.Slot)
	if err != nil {
		return fmt.Errorf("cannot read back slot %s: %w", w.u.Slot, err)
	}
	rec, err := openRecorder(w.u.Checkpoint)
	if err != nil {
		r.Close()
		return err
	}
	sw := &slotWriter{w: w, f: f, r: r, rec: rec, d: openDirect(w.u.Slot, os.O_WRONLY), rd: openDirect(w.u.Slot, os.O_RDONLY),
		work: make(chan *batch), check: make(chan *batch, 1), free: make(chan *batch, 2), done: make(chan struct{}),
		recordTo: w.cp.Verified, recordTime: time.Now(), pendingTo: w.cp.Verified}
	n := int(w.per * w.u.Base.ChunkSize)
	for range 2 {
		sw.free <- &batch{buf: alignedBuffer(n), back: alignedBuffer(n), synced: make(chan error, 1)}
	}
	w.sw = sw
	go sw.io()
	go sw.checkAll()
	return nil
}

func (sw *slotWriter) failed() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err
}

func (sw *slotWriter) fail(err error) {
	sw.mu.Lock()
	if sw.err == nil {
		sw.err = err
	}
	sw.mu.Unlock()
}

// add gives b to the slot writer.
func (sw *slotWriter) add(b *batch) error {
	if err := sw.failed(); err != nil {
		sw.free <- b
		return err
	}
	if sw.closed {
		return errors.New("internal error: a batch written after the last")
	}
	sw.work <- b
	return nil
}

// close waits for the batches handed over, and returns the first error.
func (sw *slotWriter) close() error {
	if !sw.closed {
		sw.closed = true
		close(sw.work)
		<-sw.done
		sw.rec.close()
		for _, f := range []*os.File{sw.r, sw.d, sw.rd} {
			if f != nil {
				f.Close()
			}
		}
	}
	return sw.failed()
}

// io writes, syncs and reads back the batches, in order, and hands them
// to the check goroutine.
func (sw *slotWriter) io() {
	defer close(sw.check)
	for b := range sw.work {
		b.record = sw.due(b)
		synced := sw.failed() != nil || sw.writeBack(b)
		sw.check <- b
		// The check of b goes on while it is synced.
		var err error
		if !synced && b.record {
			err = sw.sync()
		}
		b.synced <- err
	}
}

// checkpointEvery is the longest time between two records of the
// checkpoint while batches arrive.
var checkpointEvery = 2 * time.Second

// due reports whether to sync and record the checkpoint after batch b:
// when b ends the image, when it is checkpointEvery since the last
// record, or when the checkpoint would otherwise lag more than span
// chunks behind the chunks received. While b is not recorded the chunk
// writer fills the next batch, and once b is freed the one after it: up
// to b.to+2*per, before the next record.
func (sw *slotWriter) due(b *batch) bool {
	w := sw.w
	if b.to < int64(len(w.u.Base.Chunks)) && b.to+2*w.per-sw.recordTo <= w.span && time.Since(sw.recordTime) < checkpointEvery {
		return false
	}
	sw.recordTo, sw.recordTime = b.to, time.Now()
	return true
}

// writeBack writes batch b and reads it back from the medium into b.back,
// and reports whether it synced it too: with O_DIRECT the read-back reads
// the device and b is synced after it (while it is checked); through the
// page cache, b is synced first, so that its (clean) pages can be dropped.
func (sw *slotWriter) writeBack(b *batch) (synced bool) {
	w, rev := sw.w, sw.w.u.Base
	from, to := b.from*rev.ChunkSize, min(b.to*rev.ChunkSize, rev.Size)
	if err := sw.writeAt(b.buf[:to-from], from); err != nil {
		sw.fail(fmt.Errorf("cannot write slot %s: %w", w.u.Slot, err))
		return true
	}
	back := b.back[:to-from]
	if sw.rd == nil || !isAligned(back, from) {
		if err := sw.sync(); err != nil {
			sw.fail(err)
			return true
		}
		synced = true
	}
	if afterWrite != nil {
		afterWrite(b.from, b.to)
	}
	if err := sw.readAt(back, from); err != nil {
		sw.fail(fmt.Errorf("cannot read back slot %s: chunks %d to %d: %w", w.u.Slot, b.from+1, b.to, err))
	}
	return synced
}

func (sw *slotWriter) sync() error {
	if err := sw.f.Sync(); err != nil {
		return fmt.Errorf("cannot sync slot %s: %w", sw.w.u.Slot, err)
	}
	return nil
}

// checkAll checks the batches read back and, once each is synced,
// records the checkpoint, in order.
func (sw *slotWriter) checkAll() {
	defer close(sw.done)
	w, rev := sw.w, sw.w.u.Base
	defer sw.flush()
	for b := range sw.check {
		bad := int64(-1)
		if sw.failed() == nil {
			bad = sw.firstBad(b)
		}
		if err := <-b.synced; err != nil {
			sw.fail(err)
		}
		if sw.failed() == nil {
			sw.record(b, bad)
		}
		to := min(b.to*rev.ChunkSize, rev.Size)
		sw.free <- b
		if sw.failed() == nil && w.u.Progress != nil {
			w.u.Progress(to, rev.Size)
		}
	}
}

// record adds batch b, read back, whose first chunk that read back wrong
// is bad (-1: none), to the chunks read back right, and records them in
// the checkpoint when b says so (synced after it) or when a chunk read
// back wrong (synced now).
func (sw *slotWriter) record(b *batch, bad int64) {
	w := sw.w
	if bad >= 0 {
		// The chunks before the bad one read back right: synced, the
		// checkpoint covers them.
		if bad > w.cp.Verified {
			if err := sw.sync(); err != nil {
				sw.fail(err)
				return
			}
			w.cp.Verified = bad
			w.cp.Downloaded += sw.pendingDown
			w.cp.Copied += sw.pendingCopied
			sw.pendingDown, sw.pendingCopied = 0, 0
			if err := sw.rec.save(w.cp); err != nil {
				sw.fail(err)
				return
			}
		}
		sw.fail(fmt.Errorf("cannot update the base: chunk %d of slot %s: %w (the next try writes it again)", bad+1, w.u.Slot, ErrReadBack))
		return
	}
	sw.pendingTo = b.to
	sw.pendingDown += b.downloaded
	sw.pendingCopied += b.copied
	if b.record {
		sw.save()
	}
}

// save records the chunks read back right in the checkpoint; the slot is
// synced after them.
func (sw *slotWriter) save() {
	w := sw.w
	w.cp.Verified = sw.pendingTo
	w.cp.Downloaded += sw.pendingDown
	w.cp.Copied += sw.pendingCopied
	sw.pendingDown, sw.pendingCopied = 0, 0
	if err := sw.rec.save(w.cp); err != nil {
		sw.fail(err)
	}
}

// flush syncs and records the chunks read back right and not recorded
// yet, once the last batch is checked (a write that stops before the
// end: the source failed).
func (sw *slotWriter) flush() {
	if sw.failed() != nil || sw.pendingTo <= sw.w.cp.Verified {
		return
	}
	if err := sw.sync(); err != nil {
		sw.fail(err)
		return
	}
	sw.save()
}

// firstBad compares the chunks of batch b read back with the bytes
// written, each checked against its signed digest as it arrived, and
// returns the first that differs, or -1. The same bytes have the signed
// digest: the comparison proves what a second sha256 pass would, for a
// fraction of its CPU (make bench: 20-25% less CPU per write here, with
// SHA-NI; a board without SHA instructions hashes 5-10 times slower).
// What the comparison cannot see, the written bytes changing in memory
// between their check and their write, dm-verity refuses when the base
// is read at boot.
func (sw *slotWriter) firstBad(b *batch) int64 {
	cs := sw.w.u.Base.ChunkSize
	for i := b.from; i < b.to; i++ {
		off := (i - b.from) * cs
		end := off + int64(sw.w.chunkLen(i))
		if !bytes.Equal(b.back[off:end], b.buf[off:end]) {
			return i
		}
	}
	return -1
}

// writeAt writes b at off: with O_DIRECT when the slot takes it and b is
// aligned, else through the page cache.
func (sw *slotWriter) writeAt(b []byte, off int64) error {
	if sw.d != nil && isAligned(b, off) {
		_, err := sw.d.WriteAt(b, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		// The device wants larger blocks: the page cache from now on.
		sw.d.Close()
		sw.d = nil
	}
	_, err := sw.f.WriteAt(b, off)
	return err
}

// readAt reads b at off from the medium: with O_DIRECT when the slot
// takes it and b is aligned, else through the page cache once the
// synced (clean) pages are dropped.
func (sw *slotWriter) readAt(b []byte, off int64) error {
	if sw.rd != nil && isAligned(b, off) {
		_, err := sw.rd.ReadAt(b, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		sw.rd.Close()
		sw.rd = nil
		// The pages written must be clean to be dropped.
		if err := sw.f.Sync(); err != nil {
			return err
		}
	}
	dropRange(sw.r, off, int64(len(b)))
	_, err := sw.r.ReadAt(b, off)
	return err
}

// isAligned reports whether b and off can go through O_DIRECT.
func isAligned(b []byte, off int64) bool {
	return off%directAlign == 0 && len(b)%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign == 0
}

// DefaultSyncEvery bounds the work a power cut loses, unless told
// otherwise: 64 MiB, synced and recorded every 60 MiB or 2 s, 15 times
// fewer cache flushes of the medium than a sync every 4 MiB. A cut loses
// less than that: the slot's writes are O_DIRECT, on the device when
// they return, and the next Write finds the chunks written after the
// checkpoint (scan). (make bench at load 3: write+verify ran at 310-456
// MiB/s with a sync every 4 MiB, 60 MiB or only at the end alike; a kill
// at 50% had the resume transfer 51.9-53.5%, and 62.8% with 64 MiB
// before the scan. With the read-back compared instead of hashed, 472-477
// MiB/s at load 3, bound by the slot serving each batch's write and then
// its read-back.)
const DefaultSyncEvery = 64 << 20

// maxBatch bounds the bytes of a batch: four of them are in memory.
var maxBatch int64 = 4 << 20

func (u *Update) syncEvery() int64 {
	if u.SyncEvery > 0 {
		return u.SyncEvery
	}
	return DefaultSyncEvery
}
