package revisions

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"paddock.dev/paddock/internal/atomicfile"
)

// Sentinel errors of StorePackage, for callers that map them to answers.
var (
	ErrSizeMismatch   = errors.New("package size does not match its assertion")
	ErrDigestMismatch = errors.New("package sha256 does not match its assertion")
)

// StorePackage copies the package read from r into the blob store as
// revision rev of app name, checking while it streams that it is exactly
// size bytes with the given sha256 (hex). Nothing is left in the store when
// the check fails. The blob is durable when StorePackage returns.
func StorePackage(r io.Reader, name string, rev int, size int64, sha256hex string) (string, error) {
	dst := BlobPath(name, rev)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("cannot store package: %w", err)
	}
	if err := checkSpace(filepath.Dir(dst), size, 1, fmt.Sprintf("store the package of %s revision %d", name, rev)); err != nil {
		return "", err
	}
	tmp := dst + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot store package: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := copyVerified(f, r, size, sha256hex); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("cannot store package: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cannot store package: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("cannot store package: %w", err)
	}
	ok = true
	return dst, atomicfile.SyncDir(filepath.Dir(dst))
}

// copyVerified copies r to f in one pass, hashing as it goes; it reads at
// most one byte past size, so an oversized stream is refused without being
// read to its end.
func copyVerified(f *os.File, r io.Reader, size int64, sha256hex string) error {
	want, err := hex.DecodeString(sha256hex)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("internal error: bad sha256 %q", sha256hex)
	}
	h := sha256.New()
	w := newWriteback(f)
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(r, size+1), make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot store package: %w", err)
	}
	if n != size {
		return fmt.Errorf("%w: got %d bytes, want %d", ErrSizeMismatch, n, size)
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("%w: got %.16x..., want %.16s...", ErrDigestMismatch, got, sha256hex)
	}
	return nil
}

// SaveAssertions durably stores the verified assertions of revision rev of app name.
func SaveAssertions(name string, rev int, data []byte) error {
	p := AssertionPath(name, rev)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cannot save assertions: %w", err)
	}
	return atomicfile.WriteFile(p, data, 0o644)
}

// CheckPackageSpace refuses to write need more bytes of the package of
// revision rev of app name (a download) unless the store has room for
// them with a margin.
func CheckPackageSpace(name string, rev int, need int64) error {
	return checkSpace(filepath.Dir(BlobPath(name, rev)), need, 1, fmt.Sprintf("download the package of %s revision %d", name, rev))
}
