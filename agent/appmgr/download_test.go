package appmgr

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/revisions"
)

// artifact serves pkg over loopback, recording the Range headers; with
// hold, a request without a Range gets nothing until the client leaves.
type artifact struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
	asked  chan struct{}
}

func serveArtifact(t *testing.T, pkg []byte, hold bool) *artifact {
	a := &artifact{asked: make(chan struct{}, 10)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.ranges = append(a.ranges, r.Header.Get("Range"))
		a.mu.Unlock()
		select {
		case a.asked <- struct{}{}:
		default:
		}
		if hold {
			<-r.Context().Done()
			return
		}
		http.ServeContent(w, r, "p.pdk", time.Time{}, bytes.NewReader(pkg))
	}))
	t.Cleanup(a.Close)
	return a
}

// startDownload starts an install of hello revision 1 from urls for the
// fleet command c1 and returns the change's download task, not run yet.
func (f *fixture) startDownload(pkg []byte, urls ...string) *state.Task {
	f.t.Helper()
	id, err := f.m.InstallFromURL(f.pubBundle("hello", 1, pkg), Source{URLs: urls}, InstallOptions{Command: "c1"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.st.Lock()
	defer f.st.Unlock()
	chg := f.st.Change(id)
	var cmd string
	if chg.Get(CommandKey, &cmd); cmd != "c1" {
		f.t.Errorf("the change records command %q, want c1", cmd)
	}
	if first := chg.Tasks()[0]; first.Kind() != "download" {
		f.t.Fatalf("the change's first task is %s, want download", first.Kind())
	}
	return chg.Tasks()[0]
}

// The download task resumes what an earlier run left (a Range request)
// and moves the verified package into the store.
func TestDownloadTaskResumes(t *testing.T) {
	f := newFixture(t)
	pkg := bytes.Repeat([]byte("paddock!"), 4096)
	srv := serveArtifact(t, pkg, false)
	task := f.startDownload(pkg, srv.URL+"/p.pdk")
	dest := downloadPath("hello", 1)
	testutil.WriteFile(t, dest+".partial", string(pkg[:10000]))
	if err := f.m.doDownload(task); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(revisions.BlobPath("hello", 1)); err != nil || !bytes.Equal(got, pkg) {
		t.Errorf("stored package: got %d bytes, %v, want the package", len(got), err)
	}
	if srv.ranges[0] != "bytes=10000-" {
		t.Errorf("got Range %q, want bytes=10000-", srv.ranges[0])
	}
	if exists(t, dest) || exists(t, dest+".partial") {
		t.Error("the download is still in the download folder")
	}
	// Run again after a crash: the stored package is kept, nothing fetched.
	if err := f.m.doDownload(task); err != nil || len(srv.ranges) != 1 {
		t.Errorf("again: got %v after %d requests, want nil after 1", err, len(srv.ranges))
	}
}

// The agent's stop ends a download in progress: the task asks to be run
// again, and what was received stays for the next start.
func TestDownloadTaskGivesUpAtStop(t *testing.T) {
	f := newFixture(t)
	pkg := bytes.Repeat([]byte("x"), 1000)
	srv := serveArtifact(t, pkg, true)
	task := f.startDownload(pkg, srv.URL+"/p.pdk")
	done := make(chan error, 1)
	go func() { done <- f.m.doDownload(task) }()
	<-srv.asked
	f.runner.Stop()
	select {
	case err := <-done:
		var retry state.Retry
		if !errors.As(err, &retry) {
			t.Errorf("got %v, want a retry", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the download did not stop within 10s of the agent's stop")
	}
	if !exists(t, downloadPath("hello", 1)+".partial") {
		t.Error("the partial download is gone, want it kept for the next start")
	}
}

// A mirror serving other bytes fails the task, and nothing is stored;
// the undo removes what the download left.
func TestDownloadTaskRefusesOtherBytes(t *testing.T) {
	f := newFixture(t)
	pkg := bytes.Repeat([]byte("a"), 1000)
	srv := serveArtifact(t, bytes.Repeat([]byte("b"), 1000), false)
	task := f.startDownload(pkg, srv.URL+"/p.pdk")
	err := f.m.doDownload(task)
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("got %v, want a sha256 mismatch", err)
	}
	if exists(t, revisions.BlobPath("hello", 1)) {
		t.Error("a package with other bytes was stored")
	}
	testutil.WriteFile(t, downloadPath("hello", 1)+".partial", "left")
	testutil.WriteFile(t, revisions.BlobPath("hello", 1), "left")
	if err := f.m.undoDownload(task); err != nil {
		t.Fatal(err)
	}
	if exists(t, downloadPath("hello", 1)+".partial") || exists(t, revisions.BlobPath("hello", 1)) {
		t.Error("undo left the download or the stored package")
	}
}

func TestInstallFromURLRefusals(t *testing.T) {
	f := newFixture(t)
	pkg := []byte("p")
	for _, urls := range [][]string{nil, {"ftp://127.0.0.1/p.pdk"}, {"file:///etc/shadow"}, {"http://"}} {
		_, err := f.m.InstallFromURL(f.pubBundle("hello", 1, pkg), Source{URLs: urls}, InstallOptions{})
		if !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want a one-line refusal", urls, err)
		}
	}
	if n := f.changeCount(); n != 0 {
		t.Errorf("got %d changes, want none", n)
	}
}
