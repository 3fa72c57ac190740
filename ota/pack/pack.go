// Package pack builds paddock packages (.pdk): reproducible SquashFS images
// of an app's tree with its manifest at meta/app.yaml, and reads the
// manifest back out of them.
package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/ota/manifest"
)

// Compression is the SquashFS compressor of packages: zstd at level 3
// builds about as fast as lz4, decompresses fast, and makes markedly
// smaller packages to download and keep on flash. The kernel has read
// zstd SquashFS since 4.14.
var Compression = []string{"-comp", "zstd", "-Xcompression-level", "3"}

// mksquashfsPath is the mksquashfs binary; tests may swap it.
var mksquashfsPath = "mksquashfs"

// Ext is the file name extension of packages.
const Ext = ".pdk"

// DefaultName returns the file name Pack uses when given no output path.
func DefaultName(m *manifest.Manifest) string {
	return m.Name + "_" + m.Version + Ext
}

// Pack checks the app tree dir (its manifest, the files its commands name,
// and that no symlink leads outside it) and writes it as a package to out,
// or to NAME_VERSION.pdk in the current directory when out is empty. The
// same tree always gives the same bytes: owners, timestamps and extended
// attributes are left out. out is replaced atomically; on error nothing is
// left behind.
func Pack(dir, out string) (*manifest.Manifest, error) {
	m, err := readTreeManifest(dir)
	if err != nil {
		return nil, err
	}
	if err := m.CheckFiles(os.DirFS(dir)); err != nil {
		return nil, err
	}
	if err := checkTree(dir); err != nil {
		return nil, err
	}
	if out == "" {
		out = DefaultName(m)
	}
	if err := writeImage(dir, out); err != nil {
		return nil, err
	}
	return m, nil
}

// readTreeManifest reads and parses dir/meta/app.yaml, which must be a
// regular file.
func readTreeManifest(dir string) (*manifest.Manifest, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cannot pack %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("cannot pack %s: not a directory (give the app's top directory, the one holding meta/app.yaml)", dir)
	}
	name := filepath.Join(dir, manifest.Path)
	fi, err := os.Lstat(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot pack %s: %s is missing (every package needs one; see examples/hello)", dir, manifest.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot pack %s: %w", dir, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot pack %s: %s must be a regular file", dir, manifest.Path)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot pack %s: %w", dir, err)
	}
	defer f.Close()
	// One byte over the limit lets Parse say the file is too large.
	data, err := io.ReadAll(io.LimitReader(f, manifest.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot pack %s: %w", dir, err)
	}
	return manifest.Parse(data, name)
}

// writeImage runs mksquashfs on dir into a temporary file next to out,
// then syncs it and renames it into place.
func writeImage(dir, out string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := mksquashfs(dir, tmp, excludes(dir, out, tmp)); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	return atomicfile.SyncDir(filepath.Dir(out))
}

// excludes returns the paths, relative to dir, of the output files that
// lie inside dir ("paddock pack ." writes there), so that a package never
// holds itself or an older build of itself.
func excludes(dir string, paths ...string) []string {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	var ex []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(absDir, abs); err == nil && filepath.IsLocal(rel) {
			ex = append(ex, rel)
		}
	}
	return ex
}

func mksquashfs(dir, out string, exclude []string) error {
	if strings.HasPrefix(dir, "-") {
		dir = "./" + dir // not an option
	}
	args := []string{dir, out,
		"-noappend", "-quiet", "-no-progress",
		"-all-root", "-no-xattrs", "-mkfs-time", "0", "-all-time", "0",
	}
	args = append(args, Compression...)
	if len(exclude) > 0 {
		args = append(append(args, "-e"), exclude...)
	}
	cmd := exec.Command(mksquashfsPath, args...)
	// mksquashfs refuses SOURCE_DATE_EPOCH together with -mkfs-time.
	cmd.Env = packEnviron()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%w (install squashfs-tools)", err)
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("mksquashfs: %s: %w", lastLine(msg), err)
		}
		return fmt.Errorf("mksquashfs: %w", err)
	}
	return nil
}

func packEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			env = append(env, kv)
		}
	}
	return env
}
