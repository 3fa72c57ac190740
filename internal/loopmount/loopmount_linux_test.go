package loopmount

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

func makeSquashFS(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img.sqfs")
	if out, err := exec.Command("mksquashfs", src, img, "-noappend", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

func TestMountSquashFS(t *testing.T) {
	testutil.NeedLoopMounts(t)
	img := makeSquashFS(t)
	dir := t.TempDir()
	if err := MountSquashFS(img, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(dir) })

	got, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil || string(got) != "hi\n" {
		t.Errorf("read through the mount: got %q, %v, want \"hi\\n\"", got, err)
	}
	if f, err := MountedFile(dir); err != nil || f != img {
		t.Errorf("MountedFile: got %q, %v, want %q", f, err, img)
	}
	// Mounting again is a no-op, so that a repeated task does not stack mounts.
	if err := MountSquashFS(img, dir); err != nil {
		t.Fatalf("second mount: %v", err)
	}
	if n := countMounts(t, dir); n != 1 {
		t.Errorf("got %d mounts at %s, want 1", n, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err == nil {
		t.Error("wrote into a read-only mount")
	}
	var opts string
	mounts, _ := Mounts()
	for _, m := range mounts {
		if m.Dir == dir {
			opts = m.Options
		}
	}
	for _, o := range []string{"ro", "nodev", "nosuid"} {
		if !strings.Contains(","+opts+",", ","+o+",") {
			t.Errorf("mount options %q lack %s", opts, o)
		}
	}

	other := makeSquashFS(t)
	if err := MountSquashFS(other, dir); err == nil {
		t.Error("mounting another image over a mounted one succeeded, want an error")
	}

	if err := Unmount(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := MountedFile(dir); !errors.Is(err, ErrNotMounted) {
		t.Errorf("after unmount: got %v, want ErrNotMounted", err)
	}
	if err := Unmount(dir); err != nil {
		t.Errorf("second unmount: got %v, want nil", err)
	}
}

func countMounts(t *testing.T, dir string) int {
	t.Helper()
	mounts, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range mounts {
		if m.Dir == dir {
			n++
		}
	}
	return n
}
