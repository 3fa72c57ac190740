package baseupdate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
)

// helperEnv carries the update to the helper process.
const helperEnv = "PADDOCK_BASEUPDATE_HELPER"

type helperArgs struct {
	Rev        *assert.BaseRevision
	URL        string
	Slot       string
	Checkpoint string
	SyncEvery  int64 // 0: testChunk
}

// TestHelperUpdate is the process that TestUpdateResumesAfterKill (and
// the bench's resume) kills:
// it runs an update and is not a test of its own.
func TestHelperUpdate(t *testing.T) {
	env := os.Getenv(helperEnv)
	if env == "" {
		t.Skip("the process TestUpdateResumesAfterKill starts")
	}
	var a helperArgs
	if err := json.Unmarshal([]byte(env), &a); err != nil {
		t.Fatal(err)
	}
	if a.SyncEvery == 0 {
		a.SyncEvery = testChunk
	}
	u := &Update{Base: a.Rev, Slot: a.Slot, Checkpoint: a.Checkpoint, SyncEvery: a.SyncEvery,
		Source: URLSource{URLs: []string{a.URL}, Size: a.Rev.Size}}
	_, err := u.Run(t.Context())
	t.Fatalf("the update ended (%v): it should have been killed", err)
}

// TestUpdateResumesAfterKill kills (SIGKILL) a process in the middle of an
// update, when half the image went over the wire, and runs the update
// again: it resumes from the last verified chunk, so the second run
// transfers at most 55% of the image, and the slot holds the image.
func TestUpdateResumesAfterKill(t *testing.T) {
	const chunks = 31 // half the image ends in the middle of a chunk
	img, rev := testImage(chunks, 5)
	half := rev.Size / 2
	var cut atomic.Bool
	var sent atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Load() {
			http.ServeContent(countingWriter{w, &sent}, r, "base.img", time.Time{}, bytes.NewReader(img))
			return
		}
		// The first transfer stops at half the image and hangs, as a
		// network does before the power goes.
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", rev.Size-1, rev.Size))
		w.Header().Set("Content-Length", fmt.Sprint(rev.Size))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(img[:half])
		w.(http.Flusher).Flush()
		once.Do(func() { close(reached) })
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	u := newUpdate(t, dir, rev, URLSource{URLs: []string{srv.URL + "/base.img"}, Size: rev.Size})
	args, _ := json.Marshal(helperArgs{Rev: rev, URL: srv.URL + "/base.img", Slot: u.Slot, Checkpoint: u.Checkpoint})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUpdate$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(args))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(exited) }() // closed: Terminate in the cleanup sees it ended too
	t.Cleanup(func() { testutil.Terminate(cmd.Process, exited, time.Second) })
	select {
	case <-reached:
	case err := <-exited:
		t.Fatalf("the update process ended before the cut (%v): %s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("the update process did not get half the image in 60 s: %s", out)
	}
	// Once every whole chunk it received is verified and recorded, the
	// power goes.
	full := half / testChunk
	testutil.WaitFor(t, "the checkpoint of the chunks received", 30*time.Second, func() bool {
		return loadCheckpoint(u.Checkpoint, rev.SHA256, u.Slot).Verified == full
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	cut.Store(true)

	res, err := u.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkSlot(t, u.Slot, img)
	ratio := float64(sent.Load()) / float64(rev.Size)
	t.Logf("after a cut at 50%%: the resumed run transferred %d of %d bytes (%.1f%%), resumed from %d", sent.Load(), rev.Size, 100*ratio, res.Resumed)
	if ratio > 0.55 {
		t.Errorf("got %.1f%% of the image transferred after the cut, want at most 55%%", 100*ratio)
	}
	if res.Resumed != full*testChunk || res.Downloaded != sent.Load() {
		t.Errorf("got %+v, want %d resumed and %d downloaded", res, full*testChunk, sent.Load())
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint")); err != nil {
		t.Errorf("got no checkpoint after the update (%v), want one saying it is complete", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
