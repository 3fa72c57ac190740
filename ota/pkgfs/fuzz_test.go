package pkgfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/loopmount"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/manifest"
)

// The fuzz input is a list of entries of three bytes: what to create
// (file, directory, symlink, FIFO, sparse file, executable), where (an
// index into fuzzPaths) and, for a symlink, its target (an index into
// fuzzTargets, some of which lead out of the package).
var (
	fuzzPaths   = []string{"meta", "meta/app.yaml", "bin", "bin/hello", "a", "a/b", "a/b/c", "meta/x", "bin/sh"}
	fuzzTargets = []string{"/dev/zero", "@secret", "../../../../../../etc/passwd", "..", ".", "meta", "meta/app.yaml",
		"a/b", "../@outside/secret", "/", "hello", "loop", "a", "../bin/hello", "b/../../bin/hello", "@outside", "../a/b/c"}
)

const (
	fuzzSecret  = "fuzz-secret-content-never-read"
	fuzzMaxRead = 64 << 10
)

// buildTree creates the tree that data describes under root; outside is a
// directory next to it that holds the secret file.
func buildTree(t *testing.T, root, outside string, data []byte) {
	for i := 0; i+2 < len(data) && i < 3*16; i += 3 {
		p := filepath.Join(root, fuzzPaths[int(data[i+1])%len(fuzzPaths)])
		os.MkdirAll(filepath.Dir(p), 0o755)
		switch data[i] % 6 {
		case 0:
			os.WriteFile(p, []byte("content of "+p[len(root):]), 0o644)
		case 1:
			os.Mkdir(p, 0o755)
		case 2:
			target := fuzzTargets[int(data[i+2])%len(fuzzTargets)]
			target = strings.ReplaceAll(target, "@secret", filepath.Join(outside, "secret"))
			target = strings.ReplaceAll(target, "@outside", outside)
			os.Symlink(target, p)
		case 3:
			unix.Mkfifo(p, 0o644)
		case 4:
			if f, err := os.Create(p); err == nil {
				f.Truncate(1 << 20)
				f.Close()
			}
		case 5:
			os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
		}
	}
}

// FuzzRead builds hostile package trees and reads them through the safe
// path, as a plain directory and, where root and mksquashfs allow, as a
// loop-mounted SquashFS image: it must never panic, hang, follow a
// symlink, return what lies outside the package, or let a command resolve
// outside it.
func FuzzRead(f *testing.F) {
	f.Add([]byte{0, 1, 0})                    // a plain manifest
	f.Add([]byte{2, 1, 0})                    // app.yaml -> /dev/zero
	f.Add([]byte{2, 1, 1})                    // app.yaml -> a secret outside
	f.Add([]byte{3, 1, 0})                    // app.yaml is a FIFO
	f.Add([]byte{4, 1, 0})                    // app.yaml is a sparse file
	f.Add([]byte{2, 0, 15, 0, 1, 0})          // meta -> a directory outside
	f.Add([]byte{5, 3, 0, 2, 8, 10})          // bin/sh -> bin/hello, inside
	f.Add([]byte{2, 3, 13, 5, 8, 0})          // bin/hello -> ../bin/hello: a loop
	f.Add([]byte{2, 3, 2, 0, 1, 0})           // bin/hello -> ../../etc/passwd
	f.Add([]byte{1, 5, 0, 2, 6, 14, 5, 3, 0}) // a/b/c -> b/../../bin/hello
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "pkg"), filepath.Join(base, "outside")
		must(t, os.Mkdir(root, 0o755))
		must(t, os.Mkdir(outside, 0o755))
		must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte(fuzzSecret), 0o600))
		buildTree(t, root, outside, data)
		walkMode := len(data) > 0 && data[len(data)-1]&0x80 != 0
		old := noOpenat2.Load()
		noOpenat2.Store(walkMode)
		defer noOpenat2.Store(old)
		checkTree(t, root)
		if mnt := mountTree(t, root, base); mnt != "" {
			checkTree(t, mnt)
		}
	})
}

// checkTree reads every path of the table through the safe path and
// checks each answer against the tree as the host sees it.
func checkTree(t *testing.T, root string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := Open(root)
		if err != nil {
			t.Errorf("Open: %v", err)
			return
		}
		defer r.Close()
		for _, name := range append([]string{"."}, fuzzPaths...) {
			checkPath(t, r, root, name)
		}
		checkCommand(t, r, root)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reading the package hung")
	}
}

func checkPath(t *testing.T, r *Root, root, name string) {
	data, err := r.ReadFile(name, fuzzMaxRead)
	if err != nil && strings.Contains(err.Error(), fuzzSecret) {
		t.Errorf("ReadFile(%q): the error holds the secret: %v", name, err)
	}
	if err == nil {
		if bytes.Contains(data, []byte(fuzzSecret)) {
			t.Fatalf("ReadFile(%q) read the secret outside the package", name)
		}
		if !plainPath(root, name) {
			t.Errorf("ReadFile(%q) succeeded, but the path is not a regular file reached without symlinks", name)
		}
		if want, _ := os.ReadFile(filepath.Join(root, name)); !bytes.Equal(data, want) {
			t.Errorf("ReadFile(%q): got %q, want %q", name, data, want)
		}
	}
	fi, err := r.Lstat(name)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if _, err := r.ReadLink(name); err != nil {
			t.Errorf("ReadLink(%q) of a symlink: %v", name, err)
		}
	}
}

// plainPath reports whether name under root is a regular file that no
// symlink leads to, as the host sees it.
func plainPath(root, name string) bool {
	p := root
	parts := strings.Split(name, "/")
	for i, c := range parts {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return false
		}
		if i == len(parts)-1 {
			return fi.Mode().IsRegular()
		}
	}
	return false
}

// checkCommand checks a manifest command against the tree, as the agent
// does at install: when the check passes, the command must resolve to a
// regular executable file inside the package.
func checkCommand(t *testing.T, r *Root, root string) {
	m, err := manifest.Parse([]byte("name: x\nversion: \"1\"\napps:\n  x:\n    command: bin/sh\n"), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckFiles(r.FS()); err != nil {
		return
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, "bin/sh"))
	if err != nil {
		t.Fatalf("CheckFiles accepted bin/sh, which does not resolve: %v", err)
	}
	if rootReal, _ := filepath.EvalSymlinks(root); !strings.HasPrefix(real, rootReal+"/") {
		t.Fatalf("CheckFiles accepted bin/sh, which resolves to %s, outside the package", real)
	}
	if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("CheckFiles accepted bin/sh, which is no regular file (%v)", err)
	}
}

// mountTree packs root with mksquashfs and loop-mounts it, when this
// machine can; it returns the mount point, or "".
func mountTree(t *testing.T, root, base string) string {
	if !testutil.CanLoopMount() {
		return ""
	}
	img, mnt := filepath.Join(base, "pkg.pdk"), filepath.Join(base, "mnt")
	out, err := exec.Command("mksquashfs", root, img, "-noappend", "-quiet", "-no-progress", "-no-xattrs").CombinedOutput()
	if err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	must(t, os.Mkdir(mnt, 0o755))
	if err := loopmount.MountSquashFS(img, mnt); err != nil {
		t.Fatalf("cannot mount the package: %v", err)
	}
	t.Cleanup(func() {
		if err := loopmount.Unmount(mnt); err != nil && !errors.Is(err, loopmount.ErrNotMounted) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return mnt
}
