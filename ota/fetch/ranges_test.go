package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRange(t *testing.T) {
	m := newMirror(t, serveBytes(content))
	var got bytes.Buffer
	n, err := Range(t.Context(), []string{m.URL + "/a"}, int64(len(content)), 1000, 5000, &got, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4000 || !bytes.Equal(got.Bytes(), content[1000:5000]) {
		t.Errorf("got %d bytes (equal: %v), want bytes 1000-4999", n, bytes.Equal(got.Bytes(), content[1000:5000]))
	}
	if ranges, sent := m.stats(); fmt.Sprint(ranges) != "[bytes=1000-4999]" || sent != 4000 {
		t.Errorf("got requests %q sending %d bytes, want one for bytes=1000-4999 sending 4000", ranges, sent)
	}
}

// TestRangeResumesAfterCut: a connection lost in the middle resumes from
// the first byte not yet written, not from the range's start.
func TestRangeResumesAfterCut(t *testing.T) {
	fastRetries(t)
	from, to, cut := 10000, 200000, 50000
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 0 {
			serveBytes(content)(w, r, n)
			return
		}
		cw := w.(countWriter)
		conn, bw, err := cw.hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", from, to-1, len(content), to-from)
		bw.Write(content[from:cut])
		bw.Flush()
		cw.count(cut - from)
	})
	var got bytes.Buffer
	if _, err := Range(t.Context(), []string{m.URL + "/a"}, int64(len(content)), int64(from), int64(to), &got, Options{Retries: 1}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), content[from:to]) {
		t.Errorf("got %d bytes, not bytes %d-%d", got.Len(), from, to-1)
	}
	ranges, sent := m.stats()
	if want := fmt.Sprintf("[bytes=%d-%d bytes=%d-%d]", from, to-1, cut, to-1); fmt.Sprint(ranges) != want {
		t.Errorf("got requests %q, want %s", ranges, want)
	}
	if sent != int64(to-from) {
		t.Errorf("got %d bytes sent, want %d", sent, to-from)
	}
}

// TestRangeWithoutRangeSupport: a mirror that answers 200 with the whole
// file still gives the right bytes.
func TestRangeWithoutRangeSupport(t *testing.T) {
	m := newMirror(t, func(w http.ResponseWriter, r *http.Request, _ int) { w.Write(content) })
	var got bytes.Buffer
	if _, err := Range(t.Context(), []string{m.URL + "/a"}, int64(len(content)), 7, 4096, &got, Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), content[7:4096]) {
		t.Errorf("got %d bytes, not bytes 7-4095", got.Len())
	}
}

type failingWriter struct{ after int }

var errSink = errors.New("sink says no")

func (w *failingWriter) Write(b []byte) (int, error) {
	if w.after -= len(b); w.after < 0 {
		return 0, errSink
	}
	return len(b), nil
}

// TestRangeWriterError: the writer's error ends Range at once, unwrapped
// and not retried.
func TestRangeWriterError(t *testing.T) {
	m := newMirror(t, serveBytes(content))
	_, err := Range(t.Context(), []string{m.URL + "/a", m.URL + "/b"}, int64(len(content)), 0, int64(len(content)), &failingWriter{after: 70000}, Options{Retries: 3})
	if err != errSink {
		t.Errorf("got %v, want the writer's error itself", err)
	}
	if ranges, _ := m.stats(); len(ranges) != 1 {
		t.Errorf("got %d requests, want 1", len(ranges))
	}
}

func TestRangeRefusesOtherFile(t *testing.T) {
	m := newMirror(t, serveBytes(content[:1000]))
	_, err := Range(t.Context(), []string{m.URL + "/a"}, int64(len(content)), 0, 100, &bytes.Buffer{}, Options{})
	if !errors.Is(err, ErrSizeMismatch) || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %v, want one line about the size", err)
	}
}
