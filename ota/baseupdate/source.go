package baseupdate

import (
	"context"
	"fmt"
	"io"
	"os"

	"paddock.dev/paddock/ota/fetch"
)

// A Source gives the bytes of the image being written.
type Source interface {
	// Fetch writes bytes [from, to) of the image to w, in order. An error
	// of w is returned as it is.
	Fetch(ctx context.Context, from, to int64, w io.Writer) error
	// String names the source in messages.
	String() string
}

// FileSource reads the image from a local file.
type FileSource struct{ Path string }

// Fetch copies bytes [from, to) of the file.
func (s FileSource) Fetch(ctx context.Context, from, to int64, w io.Writer) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("cannot read the base image: %w", err)
	}
	defer f.Close()
	r := io.NewSectionReader(f, from, to-from)
	var n int64
	if rf, ok := w.(io.ReaderFrom); ok {
		// Read straight into the writer's buffer.
		n, err = rf.ReadFrom(ctxReader{ctx, r})
	} else {
		n, err = io.CopyBuffer(ctxWriter{ctx, w}, r, make([]byte, 1<<20))
	}
	if err != nil {
		return err
	}
	if n < to-from {
		return fmt.Errorf("cannot read the base image: %s ends at byte %d, want %d", s.Path, from+n, to)
	}
	return nil
}

// ctxWriter stops a copy once its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(b)
}

// ctxReader stops a read once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

func (s FileSource) String() string { return s.Path }

// URLSource downloads the image from mirrors, tried in order, with Range
// requests (package fetch).
type URLSource struct {
	URLs []string
	Size int64
	fetch.Options
}

// Fetch downloads bytes [from, to).
func (s URLSource) Fetch(ctx context.Context, from, to int64, w io.Writer) error {
	_, err := fetch.Range(ctx, s.URLs, s.Size, from, to, w, s.Options)
	return err
}

func (s URLSource) String() string {
	if len(s.URLs) == 1 {
		return s.URLs[0]
	}
	return fmt.Sprintf("%s (and %d more mirrors)", s.URLs[0], len(s.URLs)-1)
}
