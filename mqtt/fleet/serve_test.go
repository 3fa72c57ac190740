package fleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
)

// serveTree makes ROOT/art/{art.bin, sub/inner.bin, links} and
// ROOT/outside/secret, and returns ROOT/art and the content of art.bin.
func serveTree(t *testing.T) (string, []byte) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "art")
	content := make([]byte, 1000)
	for i := range content {
		content[i] = byte(i * 7)
	}
	for _, d := range []string{"art/sub", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{"art/art.bin": content, "art/sub/inner.bin": []byte("inner"), "outside/secret": []byte("secret")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"art/escape":     "../outside/secret",
		"art/abs":        filepath.Join(root, "outside/secret"),
		"art/escapedir":  "../outside",
		"art/alias":      "art.bin",
		"art/sub/parent": "../art.bin",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, content
}

func TestArtifactHandlerRange(t *testing.T) {
	dir, content := serveTree(t)
	srv := httptest.NewServer(NewArtifactHandler(dir))
	defer srv.Close()
	tests := []struct {
		rng        string
		wantStatus int
		wantRange  string
		want       []byte
	}{
		{"", http.StatusOK, "", content},
		{"bytes=100-199", http.StatusPartialContent, "bytes 100-199/1000", content[100:200]},
		{"bytes=900-", http.StatusPartialContent, "bytes 900-999/1000", content[900:]},
		{"bytes=-10", http.StatusPartialContent, "bytes 990-999/1000", content[990:]},
		{"bytes=1000-", http.StatusRequestedRangeNotSatisfiable, "bytes */1000", nil},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/art.bin", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Range") != tt.wantRange {
				t.Errorf("got %d with Content-Range %q, want %d with %q", resp.StatusCode, resp.Header.Get("Content-Range"), tt.wantStatus, tt.wantRange)
			}
			if tt.want != nil && !bytes.Equal(body, tt.want) {
				t.Errorf("got %d bytes, want bytes %q of the file (%d bytes)", len(body), tt.rng, len(tt.want))
			}
		})
	}
}

func TestArtifactHandlerPaths(t *testing.T) {
	dir, _ := serveTree(t)
	h := NewArtifactHandler(dir)
	tests := []struct {
		target     string
		wantStatus int
	}{
		{"/art.bin", http.StatusOK},
		{"/sub/inner.bin", http.StatusOK},
		{"/alias", http.StatusOK},      // a symlink inside DIR is fine
		{"/sub/parent", http.StatusOK}, // and may use ".." as long as it stays inside
		{"/sub/../art.bin", http.StatusForbidden},
		{"/../outside/secret", http.StatusForbidden},
		{"/sub/../../outside/secret", http.StatusForbidden},
		{"/%2e%2e/outside/secret", http.StatusForbidden},
		{"/escape", http.StatusNotFound},
		{"/abs", http.StatusNotFound},
		{"/escapedir/secret", http.StatusNotFound},
		{"/missing.pdk", http.StatusNotFound},
		{"/", http.StatusNotFound}, // no directory listings
		{"/sub/", http.StatusNotFound},
		{"/sub", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.target, nil))
			if w.Code != tt.wantStatus {
				t.Errorf("got %d for %s, want %d", w.Code, tt.target, tt.wantStatus)
			}
			if strings.Contains(w.Body.String(), "secret") && w.Code == http.StatusOK {
				t.Errorf("got the file outside DIR served for %s", tt.target)
			}
		})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/art.bin", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("got %d for POST, want %d", w.Code, http.StatusMethodNotAllowed)
	}
}

// An HTTP client cleans nothing, but to be sure no layer between the
// socket and the handler turns ".." into a path outside DIR, send it raw.
func TestArtifactHandlerRawDotDot(t *testing.T) {
	dir, _ := serveTree(t)
	srv := httptest.NewServer(NewArtifactHandler(dir))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /../outside/secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Errorf("got %d, want 403 or 404", resp.StatusCode)
	}
}

// serveSyncBuffer is a bytes.Buffer safe for the server's goroutines.
type serveSyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *serveSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *serveSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServe(t *testing.T) {
	dir, content := serveTree(t)
	ctx, stop := context.WithCancel(context.Background())
	testutil.Replace(t, &serveNotify, func() (context.Context, context.CancelFunc) { return ctx, stop })

	outR, outW := io.Pipe()
	var stderr serveSyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Serve([]string{dir, "--listen", "127.0.0.1:0"}, outW, &stderr)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("got %v reading the URL, want a line (stderr %q)", err, stderr.String())
	}
	go io.Copy(io.Discard, outR)
	fields := strings.Fields(line)
	if len(fields) < 4 || !strings.HasPrefix(fields[3], "http://127.0.0.1:") {
		t.Fatalf("got %q, want the URL it serves on", line)
	}
	resp, err := http.Get(fields[3] + "art.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Errorf("got %d with %d bytes, want 200 with %d", resp.StatusCode, len(body), len(content))
	}
	stop() // as SIGINT would
	if err := <-done; err != nil {
		t.Errorf("got %v after the signal, want nil", err)
	}
	log := stderr.String()
	if strings.Count(log, "\n") != 1 || !strings.Contains(log, `"/art.bin"`) || !strings.Contains(log, " 200 1000B ") {
		t.Errorf("got log %q, want one line for GET /art.bin 200 1000B", log)
	}
}

func TestServeUsage(t *testing.T) {
	dir, _ := serveTree(t)
	tests := []struct {
		args    []string
		wantErr error
		wantOut string
	}{
		{nil, cli.ErrUsage, ""},
		{[]string{dir, dir}, cli.ErrUsage, ""},
		{[]string{filepath.Join(dir, "missing")}, cli.ErrUsage, ""},
		{[]string{filepath.Join(dir, "art.bin")}, cli.ErrUsage, ""},
		{[]string{dir, "--bogus"}, cli.ErrUsage, ""},
		{[]string{"--help"}, nil, "Range requests"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := Serve(tt.args, &out, io.Discard)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("got output %q, want it to contain %q", out.String(), tt.wantOut)
			}
		})
	}
}
