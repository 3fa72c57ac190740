package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// partial is DEST.partial: the bytes received so far and their running
// sha256, so a resumed download is verified as a whole without reading the
// file again.
type partial struct {
	path string
	f    *os.File
	h    hash.Hash
	n    int64
	// src is the mirror that wrote every byte of the file, or "" when the
	// bytes came from an earlier run or from several mirrors. It tells a
	// mirror serving wrong bytes from a partial file gone bad.
	src string
}

// openPartial opens or creates path and hashes what an earlier run left in
// it. A file longer than size cannot be a prefix of the artifact: it is
// emptied.
func openPartial(path string, size int64) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &localError{fmt.Errorf("cannot open %w (check that the directory exists and is writable)", err)}
	}
	p := &partial{path: path, f: f, h: sha256.New()}
	n, err := io.Copy(p.h, f)
	if err == nil && n > size {
		err = p.reset()
		n = 0
	}
	if err != nil {
		f.Close()
		return nil, &localError{fmt.Errorf("cannot read partial download %s: %w (remove it and try again)", path, err)}
	}
	p.n = n
	return p, nil
}

// Write appends b to the file and the hash; bytes that did not reach the
// file are not hashed, so a failed write leaves a consistent state.
func (p *partial) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	if err != nil {
		return n, &localError{fmt.Errorf("cannot write %s: %w (free some space and try again)", p.path, err)}
	}
	return n, nil
}

// reset empties the file to start over.
func (p *partial) reset() error {
	if err := p.f.Truncate(0); err != nil {
		return &localError{fmt.Errorf("cannot empty %s: %w", p.path, err)}
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return &localError{fmt.Errorf("cannot empty %s: %w", p.path, err)}
	}
	p.h.Reset()
	p.n = 0
	p.src = ""
	return nil
}

// sum returns the hex sha256 of the bytes so far.
func (p *partial) sum() string { return hex.EncodeToString(p.h.Sum(nil)) }

// discard closes and deletes the file: its bytes are wrong and would only
// be resumed into a wrong artifact again.
func (p *partial) discard() error {
	p.f.Close()
	if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &localError{fmt.Errorf("cannot remove bad partial download: %w", err)}
	}
	return nil
}

func (p *partial) close() { p.f.Close() }

// commit syncs the file, renames it to dest and syncs the directory, so
// that after a power cut dest is either absent or complete.
func (p *partial) commit(dest string) error {
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		return fmt.Errorf("cannot sync %s: %w", p.path, err)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", p.path, err)
	}
	if err := os.Rename(p.path, dest); err != nil {
		return fmt.Errorf("cannot move the download into place: %w", err)
	}
	dir, err := os.Open(filepath.Dir(dest))
	if err != nil {
		return fmt.Errorf("cannot sync the directory of %s: %w", dest, err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("cannot sync the directory of %s: %w", dest, err)
	}
	return nil
}
