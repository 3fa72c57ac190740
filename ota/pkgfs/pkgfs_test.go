package pkgfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// bothWays runs f once with openat2 and once with the component walk that
// kernels without openat2 use.
func bothWays(t *testing.T, f func(t *testing.T)) {
	for _, walkMode := range []bool{false, true} {
		name := "openat2"
		if walkMode {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			old := noOpenat2.Load()
			noOpenat2.Store(walkMode)
			t.Cleanup(func() { noOpenat2.Store(old) })
			f(t)
		})
	}
}

// hostileTree lays out a package with every kind of hostile entry, and a
// secret outside it; it returns the package root and the secret's content.
func hostileTree(t *testing.T) (string, string) {
	t.Helper()
	outside := t.TempDir()
	secret := "root:$y$secret-hash:19000:0:99999:7:::"
	must(t, os.WriteFile(filepath.Join(outside, "shadow"), []byte(secret), 0o600))
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "meta"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "meta/app.yaml"), []byte("name: hello\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "bin/hello"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("/dev/zero", filepath.Join(root, "zero")))
	must(t, os.Symlink(filepath.Join(outside, "shadow"), filepath.Join(root, "shadow")))
	must(t, os.Symlink("../../"+filepath.Base(outside)+"/shadow", filepath.Join(root, "relative-out")))
	must(t, os.Symlink("meta/app.yaml", filepath.Join(root, "inside")))
	must(t, os.Symlink(outside, filepath.Join(root, "outdir")))
	must(t, os.Symlink("meta", filepath.Join(root, "metalink")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	sparse, err := os.Create(filepath.Join(root, "sparse"))
	must(t, err)
	must(t, sparse.Truncate(2<<30))
	must(t, sparse.Close())
	return root, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadFile(t *testing.T) {
	root, secret := hostileTree(t)
	tests := []struct {
		name string
		want error // nil: reads "name: hello\n"
		is   error // for errors not of this package
	}{
		{name: "meta/app.yaml"},
		{name: "zero", want: ErrSymlink},
		{name: "shadow", want: ErrSymlink},
		{name: "relative-out", want: ErrSymlink},
		{name: "inside", want: ErrSymlink},
		{name: "outdir/shadow", want: ErrSymlink},
		{name: "metalink/app.yaml", want: ErrSymlink},
		{name: "fifo", want: ErrNotRegular},
		{name: "sparse", want: ErrTooLarge},
		{name: "meta", want: ErrNotRegular},
		{name: "../shadow", want: ErrInvalidPath},
		{name: "/etc/passwd", want: ErrInvalidPath},
		{name: "meta/../meta/app.yaml", want: ErrInvalidPath},
		{name: "missing", is: fs.ErrNotExist},
		{name: "meta/app.yaml/x", is: unix.ENOTDIR},
	}
	bothWays(t, func(t *testing.T) {
		r, err := Open(root)
		must(t, err)
		defer r.Close()
		for _, tt := range tests {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			data, err := r.ReadFile(tt.name, 1<<20)
			took := time.Since(start)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			want := tt.want
			if want == nil {
				want = tt.is
			}
			switch {
			case want == nil && (err != nil || string(data) != "name: hello\n"):
				t.Errorf("ReadFile(%q): got %q, %v, want the manifest", tt.name, data, err)
			case want != nil && !errors.Is(err, want):
				t.Errorf("ReadFile(%q): got %q, %v, want %v", tt.name, data, err, want)
			}
			if err != nil && containsAny(err.Error(), secret, "hash") {
				t.Errorf("ReadFile(%q): the error %q holds the content of the file outside", tt.name, err)
			}
			if took > time.Second {
				t.Errorf("ReadFile(%q) took %v, want it refused at once", tt.name, took)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("ReadFile(%q) allocated %d bytes, want less than 4 MiB", tt.name, grew)
			}
		}
	})
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) > 0 && len(s) >= len(sub) {
			for i := 0; i+len(sub) <= len(s); i++ {
				if s[i:i+len(sub)] == sub {
					return true
				}
			}
		}
	}
	return false
}

func TestLstatAndReadLink(t *testing.T) {
	root, _ := hostileTree(t)
	bothWays(t, func(t *testing.T) {
		r, err := Open(root)
		must(t, err)
		defer r.Close()
		fi, err := r.Lstat("inside")
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("Lstat(inside): got %v, %v, want a symlink", fi, err)
		}
		if target, err := r.ReadLink("inside"); err != nil || target != "meta/app.yaml" {
			t.Errorf("ReadLink(inside): got %q, %v, want meta/app.yaml", target, err)
		}
		if _, err := r.ReadLink("metalink/app.yaml"); !errors.Is(err, ErrSymlink) {
			t.Errorf("ReadLink through a symlink: got %v, want ErrSymlink", err)
		}
		if _, err := r.ReadLink("meta/app.yaml"); err == nil {
			t.Error("ReadLink of a regular file: got no error")
		}
		if fi, err := r.Lstat("fifo"); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("Lstat(fifo): got %v, %v, want a named pipe", fi, err)
		}
		if fi, err := r.Lstat("."); err != nil || !fi.IsDir() {
			t.Errorf("Lstat(.): got %v, %v, want the root directory", fi, err)
		}
		if _, err := fs.Stat(r.FS(), "inside"); !errors.Is(err, ErrSymlink) {
			t.Errorf("FS Stat of a symlink: got %v, want ErrSymlink (never followed)", err)
		}
		if _, err := r.FS().Open("fifo"); !errors.Is(err, ErrNotRegular) {
			t.Errorf("FS Open of a FIFO: got %v, want ErrNotRegular", err)
		}
	})
}

// TestOtherMount checks that a path crossing into another mount inside the
// package is refused: a package root never reaches another file system.
func TestOtherMount(t *testing.T) {
	testutil.NeedRoot(t, "mount a tmpfs")
	root := t.TempDir()
	sub := filepath.Join(root, "sub")
	must(t, os.Mkdir(sub, 0o755))
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	must(t, os.WriteFile(filepath.Join(sub, "f"), []byte("other"), 0o644))
	bothWays(t, func(t *testing.T) {
		r, err := Open(root)
		must(t, err)
		defer r.Close()
		if data, err := r.ReadFile("sub/f", 100); !errors.Is(err, ErrOutside) {
			t.Errorf("ReadFile across a mount: got %q, %v, want ErrOutside", data, err)
		}
	})
}
