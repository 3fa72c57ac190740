package revisions

import (
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d): got %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestTreeSpace(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	testutil.WriteTree(t, src, map[string]string{"a": "x", "sub/b": string(make([]byte, 5000))})
	if err := os.Symlink("a", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	// A sparse file takes its whole size in a copy.
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 20)
	f.Close()
	bytes, files, err := treeSpace(src, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// src, sub, link: a block each; a: 1 block; b: 2 blocks; sparse: 256 blocks.
	if want := int64(3+1+2+256) * 4096; bytes != want || files != 6 {
		t.Errorf("got %d bytes in %d files, want %d in 6", bytes, files, want)
	}
	if bytes, files, err := treeSpace(filepath.Join(dir, "missing"), 4096); err != nil || bytes != 4096 || files != 1 {
		t.Errorf("missing tree: got %d bytes, %d files, %v, want one folder", bytes, files, err)
	}
}
