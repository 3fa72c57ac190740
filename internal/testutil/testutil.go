// Package testutil holds the helpers the tests of every package share:
// skipping what needs root, writing and reading files, and swapping a
// package variable for the length of a test (like tailscale's
// tstest.Replace). Each helper fails the test on error and undoes what it
// changed through t.Cleanup.
package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// NeedRoot skips the test unless it runs as root, saying why it needs root:
// NeedRoot(t, "mount a tmpfs") skips with "needs root to mount a tmpfs".
// CI runs as root, so the test runs there.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to " + why)
	}
}

// NeedCommand skips the test unless the program name is on the PATH; pkg
// is the Debian package that has it ('make deps' installs it).
func NeedCommand(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s (make deps installs %s)", name, pkg)
	}
}

// NeedLoopMounts skips the test unless it can pack and loop-mount SquashFS
// packages: root, loop devices and mksquashfs.
func NeedLoopMounts(t testing.TB) {
	t.Helper()
	NeedRoot(t, "attach loop devices and mount")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("needs loop devices: %v", err)
	}
	NeedCommand(t, "mksquashfs", "squashfs-tools")
}

// CanLoopMount reports whether NeedLoopMounts would let a test run, for
// tests that do more when they can.
func CanLoopMount() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return false
	}
	_, err := exec.LookPath("mksquashfs")
	return err == nil
}

// WaitFor polls ok until it reports true, failing the test when it has not
// within d; what says what the test waits for. It polls every 10ms at first
// and backs off to every 100ms, so that an ok that runs a program does not
// keep the machine busy.
func WaitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	pause := 10 * time.Millisecond
	for start := time.Now(); !ok(); time.Sleep(pause) {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		pause = min(pause*3/2, 100*time.Millisecond)
	}
}

// Replace sets *p to v for the test and restores the old value when the
// test ends.
func Replace[T any](t testing.TB, p *T, v T) {
	t.Helper()
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// WriteFile writes data to path with mode 0644, creating its directories.
func WriteFile(t testing.TB, path, data string) {
	t.Helper()
	WriteFileMode(t, path, data, 0o644)
}

// WriteFileMode writes data to path with mode perm (whatever the umask),
// creating its directories.
func WriteFileMode(t testing.TB, path, data string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// WriteTree writes files (slash-separated names relative to root, and
// their contents) below root with mode 0644.
func WriteTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		WriteFile(t, filepath.Join(root, filepath.FromSlash(name)), data)
	}
}

// Symlink makes link a symbolic link to target.
func Symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TempFile writes data to a file called name in a new temporary directory
// and returns its path.
func TempFile(t testing.TB, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	WriteFile(t, p, data)
	return p
}

// FillDisk appends to the file path (created with mode 0644) until its
// disk is full, as an app filling its data would.
func FillDisk(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// ReadFile returns the contents of path.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// AddSeeds adds the contents of the files that the glob patterns match
// ("testdata/*.acl") to f's seed corpus, failing f on a file it cannot read.
func AddSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	for _, p := range patterns {
		names, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}
