package pack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

const helloYAML = `name: hello
version: "1.0"
summary: Says hello
apps:
  hello:
    command: bin/hello
hooks:
  install:
`

func requireSquashfsTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{mksquashfsPath, unsquashfsPath} {
		testutil.NeedCommand(t, tool, "squashfs-tools")
	}
}

// writeTree creates a small app tree in a new directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(data, "#!") {
			mode = 0o755
		}
		testutil.WriteFileMode(t, filepath.Join(dir, name), data, mode)
	}
	return dir
}

func helloTree(t *testing.T) string {
	return writeTree(t, map[string]string{
		"meta/app.yaml":      helloYAML,
		"bin/hello":          "#!/bin/sh\necho hello\n",
		"hooks/install":      "#!/bin/sh\n",
		"share/greeting.txt": "hello, world\n",
	})
}

// touchAll sets every file in dir to mtime t.
func touchAll(tb testing.TB, dir string, mtime time.Time) {
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestPackReproducible(t *testing.T) {
	requireSquashfsTools(t)
	out := t.TempDir()
	var images [][]byte
	for i, mtime := range []time.Time{time.Unix(1e9, 0), time.Now()} {
		dir := helloTree(t) // a fresh copy: other inode numbers and times
		touchAll(t, dir, mtime)
		pdk := filepath.Join(out, "hello"+string(rune('a'+i))+".pdk")
		if _, err := Pack(dir, pdk); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(pdk)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, data)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Errorf("got different images for the same tree (%d and %d bytes), want identical bytes", len(images[0]), len(images[1]))
	}
	if fi, err := os.Stat(filepath.Join(out, "helloa.pdk")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("got %v, %v, want a file with mode 0644", fi, err)
	}
}

func TestPackReadManifest(t *testing.T) {
	requireSquashfsTools(t)
	pdk := filepath.Join(t.TempDir(), "hello.pdk")
	packed, err := Pack(helloTree(t), pdk)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(pdk)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "hello" || m.Version != "1.0" || m.Apps["hello"].Command != "bin/hello" || m.Hooks["install"] == nil {
		t.Errorf("got %+v, want hello 1.0 with app hello and hook install", m)
	}
	if m.Name != packed.Name || m.Summary != packed.Summary {
		t.Errorf("got %+v from the package, want %+v as packed", m, packed)
	}
}

func TestReadManifestErrors(t *testing.T) {
	requireSquashfsTools(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pdk")
	if err := os.WriteFile(garbage, []byte("not squashfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An image without meta/app.yaml, made directly with mksquashfs.
	plain := filepath.Join(dir, "plain.pdk")
	src := writeTree(t, map[string]string{"a.txt": "a"})
	if out, err := exec.Command(mksquashfsPath, src, plain, "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	tests := []struct{ pdk, want string }{
		{filepath.Join(dir, "missing.pdk"), "no such file"},
		{garbage, "superblock"},
		{plain, "meta/app.yaml is not in the package"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.pdk), func(t *testing.T) {
			_, err := ReadManifest(tt.pdk)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPackDefaultName(t *testing.T) {
	requireSquashfsTools(t)
	dir := helloTree(t)
	t.Chdir(dir) // "paddock pack ." writes into the tree itself
	for range 2 {
		if _, err := Pack(".", ""); err != nil {
			t.Fatal(err)
		}
	}
	// Regression: the second build must not contain the first.
	out, err := exec.Command(unsquashfsPath, "-lc", "hello_1.0.pdk").CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v: %s", err, out)
	}
	if strings.Contains(string(out), ".pdk") {
		t.Errorf("got a package listing %s, want no .pdk inside", out)
	}
	assertNoTemp(t, dir)
}

func TestPackRejects(t *testing.T) {
	requireSquashfsTools(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"escaping symlink", func(t *testing.T, dir string) {
			testutil.Symlink(t, "../../etc/passwd", filepath.Join(dir, "share/passwd"))
		}, "symlink share/passwd points to ../../etc/passwd, outside the package"},
		{"absolute symlink", func(t *testing.T, dir string) {
			testutil.Symlink(t, "/etc/passwd", filepath.Join(dir, "share/passwd"))
		}, "absolute path /etc/passwd"},
		{"escaping through a symlinked dir", func(t *testing.T, dir string) {
			testutil.Symlink(t, "..", filepath.Join(dir, "share/up"))
			testutil.Symlink(t, "up/../x", filepath.Join(dir, "share/esc"))
		}, "symlink share/esc points to up/../x, outside the package"},
		{"missing command file", func(t *testing.T, dir string) {
			remove(t, filepath.Join(dir, "bin/hello"))
		}, `meta/app.yaml:6: apps.hello.command: "bin/hello" does not exist`},
		{"malformed yaml", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "meta/app.yaml"), "name: [hello\n")
		}, "meta/app.yaml:1: invalid YAML"},
		{"no manifest", func(t *testing.T, dir string) {
			remove(t, filepath.Join(dir, "meta/app.yaml"))
		}, "meta/app.yaml is missing"},
		{"manifest symlink", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "meta/real.yaml"), helloYAML)
			remove(t, filepath.Join(dir, "meta/app.yaml"))
			testutil.Symlink(t, "real.yaml", filepath.Join(dir, "meta/app.yaml"))
		}, "must be a regular file"},
		{"fifo", func(t *testing.T, dir string) {
			if err := mkfifo(filepath.Join(dir, "share/fifo")); err != nil {
				t.Skip(err)
			}
		}, "share/fifo is a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := helloTree(t)
			tt.setup(t, dir)
			outDir := t.TempDir()
			out := filepath.Join(outDir, "hello.pdk")
			_, err := Pack(dir, out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			assertNoTemp(t, outDir)
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("got %v for the output, want it not to exist", err)
			}
		})
	}
}

// TestPackInsideSymlinks pins that links staying inside the tree are fine,
// including dangling ones.
func TestPackInsideSymlinks(t *testing.T) {
	requireSquashfsTools(t)
	dir := helloTree(t)
	testutil.Symlink(t, "../share/greeting.txt", filepath.Join(dir, "bin/greeting"))
	testutil.Symlink(t, "share", filepath.Join(dir, "data"))
	testutil.Symlink(t, "../data/../bin/hello", filepath.Join(dir, "share/hello"))
	testutil.Symlink(t, "nothing-here", filepath.Join(dir, "share/dangling"))
	if _, err := Pack(dir, filepath.Join(t.TempDir(), "x.pdk")); err != nil {
		t.Fatal(err)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("got leftover %s, want no temporary files", e.Name())
		}
	}
}

func remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPack packs a 100 MiB tree, half random and half text, the mix
// PLATFORM.md's build-time figures were measured with.
func BenchmarkPack(b *testing.B) {
	if _, err := exec.LookPath(mksquashfsPath); err != nil {
		b.Skipf("mksquashfs is not installed: %v", err)
	}
	dir := b.TempDir()
	files := map[string][]byte{
		"meta/app.yaml": []byte(helloYAML),
		"bin/hello":     []byte("#!/bin/sh\n"),
		"hooks/install": []byte("#!/bin/sh\n"),
	}
	for i := range 50 {
		// Distinct files, or mksquashfs would store one copy.
		var text bytes.Buffer
		for j := 0; text.Len() < 1<<20; j++ {
			fmt.Fprintf(&text, "file %d line %d value %d repeated log text for compression\n", i, j, rand.IntN(1000))
		}
		random := make([]byte, 1<<20)
		for j := range random {
			random[j] = byte(rand.Uint32())
		}
		files[fmt.Sprintf("data/rand%02d", i)] = random
		files[fmt.Sprintf("data/text%02d", i)] = text.Bytes()[:1<<20]
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(b.TempDir(), "big.pdk")
	for b.Loop() {
		if _, err := Pack(dir, out); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
}
