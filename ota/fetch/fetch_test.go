package fetch

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

func fastRetries(t *testing.T) {
	testutil.Replace(t, &backoffBase, time.Millisecond)
	testutil.Replace(t, &backoffMax, 5*time.Millisecond)
}

func makeContent(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var content = makeContent(300 << 10)

// mirror is a test server that records the Range of each request and
// counts the body bytes it sent.
type mirror struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
	sent   int64
}

// countWriter counts the body bytes a handler writes.
type countWriter struct {
	http.ResponseWriter
	m *mirror
}

func (w countWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.m.mu.Lock()
	w.m.sent += int64(n)
	w.m.mu.Unlock()
	return n, err
}

// newMirror starts a server on 127.0.0.1; handle gets the number of the
// request, from 0.
func newMirror(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *mirror {
	m := &mirror{}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		n := len(m.ranges)
		m.ranges = append(m.ranges, r.Header.Get("Range"))
		m.mu.Unlock()
		handle(countWriter{w, m}, r, n)
	}))
	t.Cleanup(m.Close)
	return m
}

func (w countWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// hijack returns the connection under w and counts n body bytes as sent.
func (w countWriter) hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func (w countWriter) count(n int) {
	w.m.mu.Lock()
	w.m.sent += int64(n)
	w.m.mu.Unlock()
}

func (m *mirror) stats() ([]string, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ranges...), m.sent
}

// serveBytes serves b with Range support.
func serveBytes(b []byte) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		http.ServeContent(w, r, "artifact", time.Time{}, bytes.NewReader(b))
	}
}

func checkDest(t *testing.T, dest string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %d bytes in %s (sha256 %s), want %d (sha256 %s)", len(got), dest, sum(got), len(want), sum(want))
	}
	if _, err := os.Stat(dest + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %s.partial left behind (%v), want it gone", dest, err)
	}
}

func TestDownloadFull(t *testing.T) {
	m := newMirror(t, serveBytes(content))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := Download(t.Context(), []string{m.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{}); err != nil {
		t.Fatal(err)
	}
	checkDest(t, dest, content)
	if ranges, sent := m.stats(); len(ranges) != 1 || ranges[0] != "" || sent != int64(len(content)) {
		t.Errorf("got requests with Range %q and %d bytes sent, want one request without Range and %d bytes", ranges, sent, len(content))
	}
}

func TestResumeAfterCut(t *testing.T) {
	fastRetries(t)
	half := len(content) / 2
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 0 {
			serveBytes(content)(w, r, n)
			return
		}
		// Announce the whole file, send half of it, and hang up.
		cw := w.(countWriter)
		conn, bw, err := cw.hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(content))
		bw.Write(content[:half])
		bw.Flush()
		cw.count(half)
	})
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := Download(t.Context(), []string{m.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{Retries: 2}); err != nil {
		t.Fatal(err)
	}
	checkDest(t, dest, content)
	ranges, sent := m.stats()
	if want := []string{"", fmt.Sprintf("bytes=%d-", half)}; fmt.Sprint(ranges) != fmt.Sprint(want) {
		t.Errorf("got requests with Range %q, want %q", ranges, want)
	}
	if sent != int64(len(content)) {
		t.Errorf("got %d bytes sent in all, want %d (the second request must resume, not restart)", sent, len(content))
	}
}

// writePartial leaves dest.partial as an earlier run cut by a reboot would.
func writePartial(t *testing.T, b []byte) string {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := os.WriteFile(dest+".partial", b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dest
}

func TestResumeFromPartialOnDisk(t *testing.T) {
	tests := []struct {
		name       string
		partial    []byte
		handle     func(http.ResponseWriter, *http.Request, int)
		wantRanges []string
		wantSent   int
	}{
		{"resume", content[:100<<10], serveBytes(content),
			[]string{"bytes=102400-"}, len(content) - 100<<10},
		{"server ignores Range", content[:100<<10], func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Write(content) // a 200 with the whole file
		}, []string{"bytes=102400-"}, len(content)},
		{"complete already", content, serveBytes(content), nil, 0},
		{"longer than the artifact", append(append([]byte{}, content...), 1, 2, 3), serveBytes(content),
			[]string{""}, len(content)},
		// A power cut can leave garbage in the partial file: the mirror is not
		// at fault and is asked again from scratch.
		{"garbage prefix", make([]byte, 100<<10), serveBytes(content),
			[]string{"bytes=102400-", ""}, 2*len(content) - 100<<10},
		{"416", content[:100<<10], func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			serveBytes(content)(w, r, n)
		}, []string{"bytes=102400-", ""}, len(content)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t, tt.handle)
			dest := writePartial(t, tt.partial)
			if err := Download(t.Context(), []string{m.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{}); err != nil {
				t.Fatal(err)
			}
			checkDest(t, dest, content)
			ranges, sent := m.stats()
			if fmt.Sprint(ranges) != fmt.Sprint(tt.wantRanges) || sent != int64(tt.wantSent) {
				t.Errorf("got Range %q and %d bytes sent, want %q and %d", ranges, sent, tt.wantRanges, tt.wantSent)
			}
		})
	}
}

func TestDigestMismatch(t *testing.T) {
	fastRetries(t)
	wrong := makeContent(len(content))
	wrong[0] ^= 0xff
	bad := newMirror(t, serveBytes(wrong))
	good := newMirror(t, serveBytes(content))
	size, digest := int64(len(content)), sum(content)

	t.Run("only mirror", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "a.pdk")
		err := Download(t.Context(), []string{bad.URL + "/a.pdk"}, dest, size, digest, Options{Retries: 3})
		if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), bad.URL) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("got error %q, want one line naming %s and wrapping ErrDigestMismatch", err, bad.URL)
		}
		t.Log(err)
		if _, err := os.Stat(dest + ".partial"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got the bad partial file kept (%v), want it removed", err)
		}
		if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %s created (%v), want nothing", dest, err)
		}
	})
	t.Run("next mirror", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "a.pdk")
		before, _ := bad.stats()
		if err := Download(t.Context(), []string{bad.URL + "/a.pdk", good.URL + "/a.pdk"}, dest, size, digest, Options{Retries: 3}); err != nil {
			t.Fatal(err)
		}
		checkDest(t, dest, content)
		// A mirror serving the wrong file is not retried.
		if after, _ := bad.stats(); len(after)-len(before) != 1 {
			t.Errorf("got %d requests to the bad mirror, want 1", len(after)-len(before))
		}
		if ranges, _ := good.stats(); len(ranges) != 1 || ranges[0] != "" {
			t.Errorf("got Range %q on the good mirror, want one request from byte 0", ranges)
		}
	})
}

// closedPortURL returns a URL on 127.0.0.1 where nothing listens.
func closedPortURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/a.pdk"
}

func TestFirstMirrorDown(t *testing.T) {
	fastRetries(t)
	down := closedPortURL(t)
	good := newMirror(t, serveBytes(content))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := Download(t.Context(), []string{down, good.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{Retries: 2}); err != nil {
		t.Fatal(err)
	}
	checkDest(t, dest, content)

	err := Download(t.Context(), []string{down, down}, dest+"2", 10, sum(content), Options{Retries: 1})
	if err == nil || !strings.Contains(err.Error(), down) || !strings.Contains(err.Error(), "reachable") || strings.Contains(err.Error(), "\n") {
		t.Errorf("got error %q, want one line naming %s and what to check", err, down)
	}
	t.Log(err)
}

func TestSizeMismatch(t *testing.T) {
	fastRetries(t)
	more := append(append([]byte{}, content...), "trailing"...)
	tests := []struct {
		name   string
		handle func(http.ResponseWriter, *http.Request, int)
	}{
		{"Content-Length", serveBytes(more)},
		{"chunked", func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Write(content[:1000])
			w.(http.Flusher).Flush() // no Content-Length from here on
			w.Write(more[1000:])
		}},
		{"shorter", serveBytes(content[:1000])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t, tt.handle)
			dest := filepath.Join(t.TempDir(), "a.pdk")
			err := Download(t.Context(), []string{m.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{Retries: 1})
			if !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("got error %v, want a size mismatch", err)
			}
			t.Log(err)
			if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("got %s created (%v), want nothing", dest, err)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	b := content[:200<<10]
	m := newMirror(t, serveBytes(b))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	start := time.Now()
	if err := Download(t.Context(), []string{m.URL}, dest, int64(len(b)), sum(b), Options{RateLimit: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("got 200 KiB at 1 MiB/s in %v, want at least 150ms", took)
	}
	checkDest(t, dest, b)
}

func TestProgress(t *testing.T) {
	m := newMirror(t, serveBytes(content))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	var calls [][2]int64
	opts := Options{RateLimit: 1 << 20, Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }}
	start := time.Now()
	if err := Download(t.Context(), []string{m.URL}, dest, int64(len(content)), sum(content), opts); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	size := int64(len(content))
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{size, size} {
		t.Fatalf("got progress %v, want it to end at %d of %d", calls, size, size)
	}
	if max := int(took/progressEvery) + 2; len(calls) > max || len(calls) < 2 {
		t.Errorf("got %d progress calls in %v, want between 2 and %d", len(calls), took, max)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] || calls[i][1] != size {
			t.Errorf("got progress %v after %v, want done to grow and total %d", calls[i], calls[i-1], size)
		}
	}
}

// slowHandler sends 1 KiB every 10ms until the client goes away.
func slowHandler(w http.ResponseWriter, r *http.Request, _ int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(content)))
	for off := 0; off < len(content); off += 1 << 10 {
		w.Write(content[off : off+1<<10])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestCancel(t *testing.T) {
	m := newMirror(t, slowHandler)
	dest := filepath.Join(t.TempDir(), "a.pdk")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Download(ctx, []string{m.URL}, dest, int64(len(content)), sum(content), Options{Retries: 5})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's error", err)
	}
	t.Log(err)
	if took := time.Since(start); took > time.Second {
		t.Errorf("got Download returning %v after the cancel, want it prompt", took)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() == 0 {
		t.Errorf("got partial file %v, %v; want it kept with the bytes so far", fi, err)
	}
}

// A server that stops sending without hanging up must not block forever.
func TestStall(t *testing.T) {
	fastRetries(t)
	testutil.Replace(t, &stallTimeout, 100*time.Millisecond)
	half := len(content) / 2
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 0 {
			serveBytes(content)(w, r, n)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.Write(content[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := Download(t.Context(), []string{m.URL}, dest, int64(len(content)), sum(content), Options{}); err != nil {
		t.Fatal(err)
	}
	checkDest(t, dest, content)
	if ranges, _ := m.stats(); len(ranges) != 2 || ranges[1] != fmt.Sprintf("bytes=%d-", half) {
		t.Errorf("got Range %q, want a resume at %d", ranges, half)
	}
}

func TestBadArguments(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "a.pdk")
	tests := []struct {
		name   string
		urls   []string
		size   int64
		digest string
	}{
		{"no URL", nil, 1, sum(nil)},
		{"ftp", []string{"ftp://127.0.0.1/a"}, 1, sum(nil)},
		{"file", []string{"file:///etc/passwd"}, 1, sum(nil)},
		{"bad digest", []string{"http://127.0.0.1/a"}, 1, "abc"},
		{"negative size", []string{"http://127.0.0.1/a"}, -1, sum(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Download(t.Context(), tt.urls, dest, tt.size, tt.digest, Options{}); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 0-9/10", 0, 9, 10, true},
		{"bytes 5-9/100", 5, 9, 100, true},
		{"bytes */10", 0, 0, 0, false},
		{"bytes 5-4/10", 0, 0, 0, false},
		{"bytes 0-10/10", 0, 0, 0, false},
		{"bytes -1-3/10", 0, 0, 0, false},
		{"items 0-9/10", 0, 0, 0, false},
		{"bytes 0-9/*", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		start, end, total, ok := parseContentRange(tt.in)
		if start != tt.start || end != tt.end || total != tt.total || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.in, start, end, total, ok, tt.start, tt.end, tt.total, tt.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes */10", "bytes 1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, total, ok := parseContentRange(s)
		if ok && (start < 0 || end < start || total <= end) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, true; want 0 <= start <= end < total", s, start, end, total)
		}
	})
}

// trickleHandler announces the whole artifact and sends one byte every
// period until the client goes away, as a mirror under attack or on a
// dying link does.
func trickleHandler(period time.Duration) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(content); off++ {
			w.Write(content[off : off+1])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(period):
			}
		}
	}
}

// Regression: a mirror that sent a byte every few seconds reset the 60 s
// stall timeout forever, and a download had no overall deadline, so it
// never ended and every later command waited behind it. Now a transfer
// below the minimum rate over a window fails its attempt, even though it
// moved forward.
func TestTrickleBelowMinimumRate(t *testing.T) {
	fastRetries(t)
	testutil.Replace(t, &defaultRateWindow, 300*time.Millisecond)
	m := newMirror(t, trickleHandler(50*time.Millisecond))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := Download(ctx, []string{m.URL + "/a.pdk"}, dest, int64(len(content)), sum(content), Options{Retries: 1})
	took := time.Since(start)
	t.Log(err)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("got %v after %v, want ErrTooSlow", err, took)
	}
	msg := err.Error()
	for _, want := range []string{m.URL, "below the minimum of 1.0 KiB/s", "sent "} {
		if !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
			t.Errorf("got error %q, want one line with %q", msg, want)
		}
	}
	// Two attempts (Retries: 1) of about a window each, not the test's 10 s.
	if took > 3*time.Second {
		t.Errorf("got Download returning after %v, want about two windows of 300ms", took)
	}
	if ranges, _ := m.stats(); len(ranges) != 2 {
		t.Errorf("got %d requests (Range %q), want 2: a trickle is a failed attempt, not progress", len(ranges), ranges)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() == 0 {
		t.Errorf("got partial file %v, %v; want it kept with the bytes so far", fi, err)
	}
}

// A trickling mirror is left for the next one.
func TestTrickleNextMirror(t *testing.T) {
	fastRetries(t)
	testutil.Replace(t, &defaultRateWindow, 200*time.Millisecond)
	slow := newMirror(t, trickleHandler(50*time.Millisecond))
	good := newMirror(t, serveBytes(content))
	dest := filepath.Join(t.TempDir(), "a.pdk")
	if err := Download(t.Context(), []string{slow.URL, good.URL}, dest, int64(len(content)), sum(content), Options{}); err != nil {
		t.Fatal(err)
	}
	checkDest(t, dest, content)
}

// A download that keeps above the minimum rate but takes longer than its
// deadline ends at the deadline, its partial file kept.
func TestDeadline(t *testing.T) {
	m := newMirror(t, slowHandler) // 1 KiB every 10ms: 30 s for the whole
	dest := filepath.Join(t.TempDir(), "a.pdk")
	start := time.Now()
	err := Download(t.Context(), []string{m.URL}, dest, int64(len(content)), sum(content), Options{Limits: Limits{Deadline: 300 * time.Millisecond}})
	took := time.Since(start)
	t.Log(err)
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "deadline of 300ms") || !strings.Contains(err.Error(), m.URL) {
		t.Fatalf("got %v, want ErrDeadline naming the 300ms and the mirror", err)
	}
	if took > 2*time.Second {
		t.Errorf("got Download returning after %v, want about 300ms", took)
	}
	if fi, err := os.Stat(dest + ".partial"); err != nil || fi.Size() == 0 {
		t.Errorf("got partial file %v, %v; want it kept with the bytes so far", fi, err)
	}
}

func TestLimits(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		l         Limits
		rateLimit int64
		size      int64
		minRate   int64
		deadline  time.Duration
	}{
		{"defaults", Limits{}, 0, 100 * mib, 1024, deadlineBase + (100*1024+1)*time.Second},
		{"set", Limits{MinRate: 4096, Deadline: time.Hour}, 0, mib, 4096, time.Hour},
		{"no minimum", Limits{MinRate: -1}, 0, mib, 0, 0},
		{"no deadline", Limits{Deadline: -1}, 0, mib, 1024, 0},
		{"under a rate limit", Limits{}, 1000, mib, 500, deadlineBase + (mib/500+1)*time.Second},
		{"huge", Limits{MinRate: 1}, 0, 1 << 62, 1, deadlineBase + 100*365*24*time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.l.minRate(tt.rateLimit)
			if d := tt.l.deadline(tt.size, r); r != tt.minRate || d != tt.deadline {
				t.Errorf("got minimum %d B/s and deadline %v, want %d and %v", r, d, tt.minRate, tt.deadline)
			}
		})
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 12: "12 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
