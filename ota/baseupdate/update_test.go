package baseupdate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
)

// testChunk is the chunk size of the test images: small, so that a cut
// loses little.
const testChunk = 64 << 10

// testImage returns n chunks of random bytes (seeded) and their
// base-revision.
func testImage(n int, seed uint64) ([]byte, *assert.BaseRevision) {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n*testChunk)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, revisionOf(b)
}

func revisionOf(b []byte) *assert.BaseRevision {
	sum, chunks, err := HashChunks(bytes.NewReader(b), int64(len(b)), testChunk)
	if err != nil {
		panic(err)
	}
	return &assert.BaseRevision{Name: "paddock-base", Revision: 2, Size: int64(len(b)), SHA256: sum,
		ChunkSize: testChunk, Chunks: chunks}
}

// mirror serves an image over HTTP on loopback and counts the bytes it
// sent; corrupt, when set, says whether to flip a byte of the response
// to request n.
type mirror struct {
	*httptest.Server
	sent    atomic.Int64
	mu      sync.Mutex
	n       int
	corrupt func(n int) bool
}

func newMirror(t *testing.T, img []byte) *mirror {
	m := &mirror{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		n := m.n
		m.n++
		m.mu.Unlock()
		data := img
		if m.corrupt != nil && m.corrupt(n) {
			data = bytes.Clone(img)
			for i := range data {
				data[i] ^= 0x55
			}
		}
		http.ServeContent(countingWriter{w, &m.sent}, r, "base.img", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(m.Close)
	return m
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// newUpdate returns an update of img into a fresh slot file (of the
// image's size, zeroed) in dir.
func newUpdate(t *testing.T, dir string, rev *assert.BaseRevision, src Source) *Update {
	t.Helper()
	slot := filepath.Join(dir, "base-b")
	if _, err := os.Stat(slot); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(slot, make([]byte, rev.Size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &Update{Base: rev, Slot: slot, Checkpoint: filepath.Join(dir, "checkpoint"), Source: src, SyncEvery: testChunk}
}

func checkSlot(t *testing.T, slot string, img []byte) {
	t.Helper()
	got, err := os.ReadFile(slot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(img)], img) {
		t.Errorf("the slot does not hold the image")
	}
}

func TestUpdateFromFile(t *testing.T) {
	dir := t.TempDir()
	img, rev := testImage(20, 1)
	file := filepath.Join(dir, "base.img")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	u := newUpdate(t, dir, rev, FileSource{file})
	var last int64
	u.Progress = func(done, total int64) { last = done }
	res, err := u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
	if res.Downloaded != rev.Size || res.TotalDownloaded != rev.Size || res.Copied != 0 || res.Resumed != 0 {
		t.Errorf("got %+v, want all %d bytes from the source", res, rev.Size)
	}
	if last != rev.Size {
		t.Errorf("got last progress %d, want %d", last, rev.Size)
	}
	// Run again: the checkpoint says it is all there; it is read back,
	// not written again.
	res, err = u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 0 || res.Resumed != rev.Size {
		t.Errorf("a second run got %+v, want nothing downloaded and all resumed", res)
	}
}

// TestUpdateRefusesCorruptChunk: a mirror that serves a corrupt chunk has
// it refused, and the chunk is fetched again; a mirror that keeps serving
// it fails the update with ErrBadChunk, and nothing corrupt is written.
func TestUpdateRefusesCorruptChunk(t *testing.T) {
	img, rev := testImage(16, 2)
	t.Run("retried", func(t *testing.T) {
		m := newMirror(t, img)
		m.corrupt = func(n int) bool { return n == 0 }
		u := newUpdate(t, t.TempDir(), rev, URLSource{URLs: []string{m.URL + "/base.img"}, Size: rev.Size})
		u.Retries = 1
		res, err := u.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkSlot(t, u.Slot, img)
		if res.Downloaded != rev.Size+testChunk {
			t.Errorf("got %d bytes downloaded, want the image and the corrupt chunk (%d)", res.Downloaded, rev.Size+testChunk)
		}
	})
	t.Run("given up", func(t *testing.T) {
		m := newMirror(t, img)
		m.corrupt = func(int) bool { return true }
		u := newUpdate(t, t.TempDir(), rev, URLSource{URLs: []string{m.URL + "/base.img"}, Size: rev.Size})
		u.Retries = 2
		before, _ := os.ReadFile(u.Slot)
		if _, err := u.Run(t.Context()); !errors.Is(err, ErrBadChunk) {
			t.Fatalf("got %v, want ErrBadChunk", err)
		}
		if after, _ := os.ReadFile(u.Slot); !bytes.Equal(before, after) {
			t.Errorf("got a slot written with corrupt bytes, want it untouched")
		}
		if got := m.n; got != 3 {
			t.Errorf("got %d requests, want 3 (one and two retries)", got)
		}
	})
}

// deltaUpdate is an update over a mirror of an image that differs from
// the running slot's (the old image) in two chunks: chunk 6 is new and
// chunk 18 changed; chunk 10 is the old chunk 21, moved.
func deltaUpdate(t *testing.T) (*Update, []byte, *mirror) {
	dir := t.TempDir()
	old, oldRev := testImage(24, 3)
	running := filepath.Join(dir, "base-a")
	if err := os.WriteFile(running, old, 0o600); err != nil {
		t.Fatal(err)
	}
	img := bytes.Clone(old)
	copy(img[5*testChunk:], bytes.Repeat([]byte("new"), testChunk/3+1)[:testChunk]) // a new chunk
	copy(img[9*testChunk:10*testChunk], old[20*testChunk:21*testChunk])             // an old chunk, moved
	img[17*testChunk+100] ^= 1                                                      // a changed chunk
	rev := revisionOf(img)
	m := newMirror(t, img)
	u := newUpdate(t, dir, rev, URLSource{URLs: []string{m.URL + "/base.img"}, Size: rev.Size})
	u.Running, u.RunningChunks, u.RunningChunkSize = running, oldRev.Chunks, oldRev.ChunkSize
	return u, img, m
}

// TestUpdateCopiesIdenticalChunks: the chunks the running slot holds, at
// the same place or elsewhere, are copied from it, and only the others
// are downloaded.
func TestUpdateCopiesIdenticalChunks(t *testing.T) {
	u, img, m := deltaUpdate(t)
	rev := u.Base
	res, err := u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
	if got, want := m.sent.Load(), int64(2*testChunk); got != want {
		t.Errorf("got %d bytes sent by the mirror, want %d (the new and the changed chunk)", got, want)
	}
	if res.Copied != rev.Size-2*testChunk || res.Downloaded != 2*testChunk {
		t.Errorf("got %+v, want %d copied and %d downloaded", res, rev.Size-2*testChunk, 2*testChunk)
	}
}

// TestTotalsCountFoundChunks: the totals over every try are those of a
// write in one go, also when the try before was cut after it wrote its
// chunks and before it recorded a checkpoint, so that the next write
// finds them on the slot: found chunks the running slot holds count as
// copied, the others as downloaded. The bug it pins: a fresh-root CI run
// reported "over every try: 268.0 KiB downloaded, 0 B copied" for an
// update whose 17 MiB were nearly all copied from the running slot.
func TestTotalsCountFoundChunks(t *testing.T) {
	u, img, _ := deltaUpdate(t)
	rev := u.Base
	// The cut try wrote the first 12 chunks and recorded no checkpoint.
	slot := make([]byte, rev.Size)
	copy(slot, img[:12*testChunk])
	if err := os.WriteFile(u.Slot, slot, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
	if res.Found != 12*testChunk || res.Downloaded != testChunk || res.Copied != rev.Size-13*testChunk {
		t.Errorf("got %+v, want 12 chunks found, 1 downloaded and the rest copied by this write", res)
	}
	if res.TotalCopied != rev.Size-2*testChunk || res.TotalDownloaded != 2*testChunk {
		t.Errorf("got the totals %d copied, %d downloaded, want %d and %d (as a write in one go)",
			res.TotalCopied, res.TotalDownloaded, rev.Size-2*testChunk, 2*testChunk)
	}
}

// TestUpdateRefusesRunningSlot: the running slot is never written, even
// when named through another path.
func TestUpdateRefusesRunningSlot(t *testing.T) {
	dir := t.TempDir()
	img, rev := testImage(4, 4)
	file := filepath.Join(dir, "base.img")
	os.WriteFile(file, img, 0o600)
	u := newUpdate(t, dir, rev, FileSource{file})
	link := filepath.Join(dir, "running")
	if err := os.Symlink(u.Slot, link); err != nil {
		t.Fatal(err)
	}
	u.Running = link
	before, _ := os.ReadFile(u.Slot)
	if _, err := u.Run(t.Context()); !errors.Is(err, ErrInUse) {
		t.Fatalf("got %v, want ErrInUse", err)
	}
	if after, _ := os.ReadFile(u.Slot); !bytes.Equal(before, after) {
		t.Errorf("the running slot was written")
	}
}

func TestCheckpointIgnoresOtherImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp")
	c := checkpoint{SHA256: "a", Slot: "/dev/vda4", Verified: 7, Downloaded: 10}
	if err := c.save(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sha, slot string
		want      int64
	}{{"a", "/dev/vda4", 7}, {"b", "/dev/vda4", 0}, {"a", "/dev/vda3", 0}} {
		if got := loadCheckpoint(path, tc.sha, tc.slot).Verified; got != tc.want {
			t.Errorf("%s on %s: got %d verified, want %d", tc.sha, tc.slot, got, tc.want)
		}
	}
	os.WriteFile(path, []byte(`{"sha256":"a","slot":"/dev/vda4","verified":-3}`), 0o600)
	if got := loadCheckpoint(path, "a", "/dev/vda4").Verified; got != 0 {
		t.Errorf("a negative checkpoint: got %d verified, want 0", got)
	}
}

// TestReadBackFindsFlippedByte: a byte of the slot changed on the medium
// after its batch was written, before it was read back, fails
// the write with ErrReadBack, and the next Write writes again from the
// changed chunk.
func TestReadBackFindsFlippedByte(t *testing.T) {
	dir := t.TempDir()
	img, rev := testImage(12, 8)
	file := filepath.Join(dir, "base.img")
	os.WriteFile(file, img, 0o600)
	u := newUpdate(t, dir, rev, FileSource{file})
	u.SyncEvery = 3 * testChunk // chunk 5 is inside a batch
	flipped := false
	afterWrite = func(from, to int64) {
		if flipped || from > 5 || to <= 5 {
			return
		}
		flipped = true
		f, err := os.OpenFile(u.Slot, os.O_RDWR, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		f.WriteAt([]byte{img[5*testChunk+9] ^ 0x80}, 5*testChunk+9)
		f.Sync()
	}
	t.Cleanup(func() { afterWrite = nil })
	if _, err := u.Run(t.Context()); !errors.Is(err, ErrReadBack) {
		t.Fatalf("got %v, want ErrReadBack", err)
	}
	if !flipped {
		t.Fatal("no batch held chunk 6")
	}
	res, err := u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
	if want := rev.Size - 5*testChunk; res.Downloaded != want {
		t.Errorf("got %d bytes written again, want %d (from the changed chunk on)", res.Downloaded, want)
	}
}

// TestVerifyFindsFlippedByte: without the checkpoint of a finished write
// (read back as it went), Verify reads the whole slot back; a slot changed
// after it was written fails it, and the next Write writes again.
func TestVerifyFindsFlippedByte(t *testing.T) {
	dir := t.TempDir()
	img, rev := testImage(12, 8)
	file := filepath.Join(dir, "base.img")
	os.WriteFile(file, img, 0o600)
	u := newUpdate(t, dir, rev, FileSource{file})
	if _, err := u.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(u.Slot, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{img[5*testChunk+9] ^ 0x80}, 5*testChunk+9)
	f.Close()
	if err := RemoveCheckpoint(u.Checkpoint); err != nil {
		t.Fatal(err)
	}
	if err := u.Verify(); !errors.Is(err, ErrReadBack) {
		t.Fatalf("got %v, want ErrReadBack", err)
	}
	if _, err := u.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
}

// lagSource gives an image in pieces of 16 KiB and records, before each
// piece, how far the bytes given run ahead of the checkpoint.
type lagSource struct {
	img      []byte
	u        *Update
	verified int64 // the most chunks the checkpoint said (it only grows)
	worst    int64
	worstAt  int64
	readings int
}

func (s *lagSource) Fetch(ctx context.Context, from, to int64, w io.Writer) error {
	for off := from; off < to; off += 16 << 10 {
		// A record read while it is rewritten reads as none: keep the
		// highest.
		s.verified = max(s.verified, loadCheckpoint(s.u.Checkpoint, s.u.Base.SHA256, s.u.Slot).Verified)
		if lag := off - s.verified*s.u.Base.ChunkSize; lag > s.worst {
			s.worst, s.worstAt = lag, off
		}
		s.readings++
		if _, err := w.Write(s.img[off:min(off+16<<10, to)]); err != nil {
			return err
		}
	}
	return nil
}

func (s *lagSource) String() string { return "lag source" }

// TestCutLosesAtMostSyncEvery: at every moment of a write, the bytes taken
// from the source and not yet in the checkpoint (what a cut loses) are at
// most SyncEvery. The bug it pins: the read-back behind the write frontier
// let the writer run up to six batches of SyncEvery ahead of the
// checkpoint (bounded queues of two to the syncer and to the reader).
//
// With batches smaller than half of SyncEvery (maxBatch), the slot is
// synced and the checkpoint recorded only every few batches: the bound
// holds too.
func TestCutLosesAtMostSyncEvery(t *testing.T) {
	for _, tc := range []struct {
		name             string
		syncEvery, batch int64 // chunks
	}{
		{"a record each batch", 4, 64},
		{"a record every few batches", 16, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := maxBatch
			maxBatch = tc.batch * testChunk
			t.Cleanup(func() { maxBatch = old })
			dir := t.TempDir()
			img, rev := testImage(64, 9)
			src := &lagSource{img: img}
			u := newUpdate(t, dir, rev, src)
			u.SyncEvery = tc.syncEvery * testChunk
			src.u = u
			if _, err := u.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkSlot(t, u.Slot, img)
			t.Logf("worst lag %d bytes at byte %d, over %d pieces", src.worst, src.worstAt, src.readings)
			if src.worst > u.SyncEvery {
				t.Errorf("got %d bytes received ahead of the checkpoint at byte %d, want at most SyncEvery (%d)", src.worst, src.worstAt, u.SyncEvery)
			}
		})
	}
}

// countingSource counts the bytes its source gives.
type countingSource struct {
	Source
	n atomic.Int64
}

func (s *countingSource) Fetch(ctx context.Context, from, to int64, w io.Writer) error {
	return s.Source.Fetch(ctx, from, to, countingW{w, &s.n})
}

type countingW struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingW) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// TestWriteFindsChunksOnTheSlot: a Write resumes past its checkpoint
// over the chunks the slot already holds (an earlier try wrote them after
// its last checkpoint and was killed), read back and checked, up to the
// first chunk that differs, and fetches only the rest; a chunk corrupt on
// the slot stops the scan there and is written again. The bug it pins:
// a resume fetched everything after the checkpoint again, so a write had
// to sync and record a checkpoint every few MiB (half of its throughput)
// for a resume after a cut at 50% to transfer at most 55%.
func TestWriteFindsChunksOnTheSlot(t *testing.T) {
	const chunks, written = 20, 12 // the slot holds the first 12 chunks
	img, rev := testImage(chunks, 10)
	for _, tc := range []struct {
		name       string
		checkpoint int64 // chunks; -1: none
		corrupt    int64 // a chunk corrupt on the slot; -1: none
		found      int64 // chunks the scan finds past the checkpoint
	}{
		{"beyond the checkpoint", 4, -1, written - 4},
		{"without a checkpoint", -1, -1, written},
		{"up to a corrupt chunk", 4, 7, 7 - 4},
		{"a corrupt first chunk", -1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "base.img")
			os.WriteFile(file, img, 0o600)
			src := &countingSource{Source: FileSource{file}}
			u := newUpdate(t, dir, rev, src)
			slot := make([]byte, rev.Size)
			copy(slot, img[:written*testChunk])
			if tc.corrupt >= 0 {
				slot[tc.corrupt*testChunk+100] ^= 1
			}
			if err := os.WriteFile(u.Slot, slot, 0o600); err != nil {
				t.Fatal(err)
			}
			resumed := max(tc.checkpoint, 0)
			if tc.checkpoint >= 0 {
				cp := checkpoint{SHA256: rev.SHA256, Slot: u.Slot, Verified: tc.checkpoint, ReadBack: true, Downloaded: tc.checkpoint * testChunk}
				if err := cp.save(u.Checkpoint); err != nil {
					t.Fatal(err)
				}
			}
			res, err := u.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			checkSlot(t, u.Slot, img)
			want := (resumed + tc.found) * testChunk
			if got := src.n.Load(); got != rev.Size-want {
				t.Errorf("got %d bytes fetched, want %d (all but the %d chunks resumed)", got, rev.Size-want, resumed+tc.found)
			}
			if res.Resumed != want || res.Found != tc.found*testChunk || res.Downloaded != rev.Size-want {
				t.Errorf("got %+v, want %d resumed, %d of them found on the slot, %d downloaded", res, want, tc.found*testChunk, rev.Size-want)
			}
			if cp := loadCheckpoint(u.Checkpoint, rev.SHA256, u.Slot); cp.Verified != chunks || !cp.ReadBack {
				t.Errorf("got the checkpoint %+v, want all %d chunks read back", cp, chunks)
			}
		})
	}
}
