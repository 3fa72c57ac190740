package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// withRoot points every path of the package at a new temporary directory
// for the test and returns it.
func withRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	setRootDir(dir)
	t.Cleanup(func() { setRootDir("/") })
	return dir
}

// writeFile writes data to root/rel, creating directories.
func writeFile(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a console for tests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
