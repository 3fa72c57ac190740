package baseupdate

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/loopmount"
	"paddock.dev/paddock/internal/testutil"
)

// attachLoop attaches file to a free, writable loop device and detaches
// it when the test ends.
func attachLoop(t *testing.T, file string) string {
	t.Helper()
	testutil.NeedCommand(t, "losetup", "mount")
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach a loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "--detach", dev).Run() })
	return dev
}

// TestUpdateLoopDevice writes an image into a loop device as the slot,
// as into a partition.
func TestUpdateLoopDevice(t *testing.T) {
	testutil.NeedRoot(t, "attaches a loop device")
	testutil.NeedLoopMounts(t)
	dir := t.TempDir()
	img, rev := testImage(40, 6)
	backing := filepath.Join(dir, "base-b.part")
	if err := os.WriteFile(backing, make([]byte, rev.Size+testChunk), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := attachLoop(t, backing)
	src := filepath.Join(dir, "base.img")
	os.WriteFile(src, img, 0o600)
	u := &Update{Base: rev, Slot: dev, Checkpoint: filepath.Join(dir, "checkpoint"), Source: FileSource{src}}
	if _, err := u.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, rev.Size)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		t.Errorf("the loop device does not hold the image")
	}
	// A slot smaller than the image is refused before anything is written.
	small := &Update{Base: revisionOf(append(bytes.Clone(img), make([]byte, 2*testChunk)...)), Slot: dev,
		Checkpoint: filepath.Join(dir, "cp2"), Source: FileSource{src}}
	if _, err := small.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "larger in gadget.yaml") {
		t.Errorf("got %v, want an error saying the slot is too small", err)
	}
}

// TestUpdateRefusesMountedSlot: a slot that is mounted (as the running
// base is) is refused, by its device and by the file behind the device,
// and left untouched.
func TestUpdateRefusesMountedSlot(t *testing.T) {
	testutil.NeedRoot(t, "mounts a SquashFS")
	testutil.NeedLoopMounts(t)
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	testutil.WriteFile(t, filepath.Join(tree, "etc/paddock-base"), "name=old\n")
	fs := filepath.Join(dir, "base.squashfs")
	if out, err := exec.Command("mksquashfs", tree, fs, "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	running := filepath.Join(dir, "base-a")
	if _, err := MakeImage(fs, running); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := loopmount.MountSquashFS(running, mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loopmount.Unmount(mnt) })
	var dev string
	mounts, err := loopmount.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.Dir == mnt {
			dev = m.Source
		}
	}
	if dev == "" {
		t.Fatalf("cannot find the device mounted at %s", mnt)
	}
	before, _ := os.ReadFile(running)
	img, rev := testImage(2, 7)
	src := filepath.Join(dir, "new.img")
	os.WriteFile(src, img, 0o600)
	for _, slot := range []string{dev, running} {
		u := &Update{Base: rev, Slot: slot, Checkpoint: filepath.Join(dir, "checkpoint"), Source: FileSource{src}}
		_, err := u.Run(t.Context())
		if !errors.Is(err, ErrInUse) {
			t.Errorf("slot %s: got %v, want ErrInUse", slot, err)
		}
	}
	if after, _ := os.ReadFile(running); !bytes.Equal(before, after) {
		t.Errorf("the mounted slot was written")
	}
}
