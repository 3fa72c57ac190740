package fleet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"paddock.dev/paddock/internal/cli"
)

const serveUsage = `
Usage: paddock fleet serve DIR [--listen ADDR]

Serve makes the artifacts in DIR (packages, .assert files, base images)
downloadable over HTTP, for devices told to install them by 'paddock fleet
send' or 'paddock fleet rollout'. Artifacts never travel inside MQTT
messages: a command carries the URL, size and sha256 of each artifact, and
the device fetches it from here.

Range requests are answered, so a device whose download was cut (a flaky
link, a reboot) resumes where it stopped. Only regular files under DIR are
served: no directory listings, no '..', no symlink that leads out of DIR.
Each request is logged to stderr on one line. Serve runs until interrupted
(Ctrl-C or SIGTERM).

The server speaks plain HTTP: devices check every artifact against the
signed digest, so HTTP is safe for integrity, but put a TLS reverse proxy
in front if the artifacts are confidential. By default it listens on
loopback only; pass --listen 0.0.0.0:8080 to reach it from devices.

Examples:
    paddock fleet serve /srv/artifacts
    paddock fleet serve ./out --listen 0.0.0.0:8080
`

// serveNotify returns a context done on SIGINT or SIGTERM; tests swap it.
var serveNotify = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Serve runs 'paddock fleet serve DIR [--listen ADDR]'.
func Serve(args []string, stdout, stderr io.Writer) error {
	flags := cli.NewFlagSet("fleet serve", serveUsage, stdout)
	listen := flags.String("listen", "127.0.0.1:8080", "listen on `ADDR` (host:port; port 0 picks a free one)")
	pos, err := cli.Parse(flags, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("fleet serve takes one directory (try 'paddock fleet serve /srv/artifacts')")
	}
	dir := pos[0]
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return cli.UsageError("cannot serve %s: not a directory (give the directory that holds the artifacts)", dir)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (pick another address with --listen)", *listen, err)
	}
	srv := &http.Server{
		Handler:           serveLog(NewArtifactHandler(dir), stderr),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: a base image to a slow device takes long.
	}
	fmt.Fprintf(stdout, "Serving %s on http://%s/ (Ctrl-C to stop)\n", dir, ln.Addr())
	return serveUntilSignal(srv, ln)
}

// serveUntilSignal serves on ln until SIGINT or SIGTERM, then lets the
// requests in flight finish for a few seconds.
func serveUntilSignal(srv *http.Server, ln net.Listener) error {
	ctx, stop := serveNotify()
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("cannot serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close() // downloads still running resume later from their partial files
	}
	<-done
	return nil
}

// NewArtifactHandler serves the regular files under dir, with Range
// support for resumed downloads. It answers 403 to a path with a ".."
// element and 404 to anything else that is not a regular file inside dir:
// missing files, directories (no listings) and symlinks that lead out of
// dir.
func NewArtifactHandler(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		name, ok := serveName(r.URL.Path)
		if !ok {
			http.Error(w, "path leaves the artifact directory", http.StatusForbidden)
			return
		}
		// os.OpenInRoot refuses symlinks and ".." that resolve outside dir.
		f, err := os.OpenInRoot(dir, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	})
}

// serveName turns a URL path into a name relative to the artifact
// directory; ok is false when the path has a ".." element, which no link
// to an artifact needs.
func serveName(urlPath string) (name string, ok bool) {
	for _, elem := range strings.Split(urlPath, "/") {
		if elem == ".." {
			return "", false
		}
	}
	name = strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if name == "" {
		name = "."
	}
	return name, fs.ValidPath(name)
}

// serveLog logs each request to w on one line once it is answered.
func serveLog(h http.Handler, w io.Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &serveStatusWriter{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		rng := r.Header.Get("Range")
		if rng == "" {
			rng = "-"
		}
		// %q keeps a path with a newline from forging log lines.
		fmt.Fprintf(w, "%s %s %s %q range=%q %d %dB %v\n", start.Format(time.RFC3339), r.RemoteAddr,
			r.Method, r.URL.Path, rng, sw.status, sw.bytes, time.Since(start).Round(time.Millisecond))
	})
}

// serveStatusWriter records the status and body size of an answer.
type serveStatusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *serveStatusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *serveStatusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile(2) for the file bodies that ServeContent copies.
func (w *serveStatusWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wroteHeader = true
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *serveStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
