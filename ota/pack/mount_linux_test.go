package pack

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

func mkfifo(name string) error { return unix.Mkfifo(name, 0o644) }

// TestPackMount loop-mounts a package the way the agent does and checks
// what an app sees.
func TestPackMount(t *testing.T) {
	requireSquashfsTools(t)
	testutil.NeedRoot(t, "loop-mount a package")
	pdk := filepath.Join(t.TempDir(), "hello.pdk")
	if _, err := Pack(helloTree(t), pdk); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro,nodev,nosuid", pdk, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount squashfs here (needs loop devices and squashfs in the kernel): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	data, err := os.ReadFile(filepath.Join(mnt, "share/greeting.txt"))
	if err != nil || string(data) != "hello, world\n" {
		t.Errorf("got %q, %v, want the greeting", data, err)
	}
	fi, err := os.Stat(filepath.Join(mnt, "bin/hello"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 || fi.ModTime().Unix() != 0 {
		t.Errorf("got mode %v mtime %v, want 0755 at the epoch", fi.Mode(), fi.ModTime())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("got owner %d:%d, want 0:0", st.Uid, st.Gid)
	}
	out, err := exec.Command(filepath.Join(mnt, "bin/hello")).Output()
	if err != nil || string(out) != "hello\n" {
		t.Errorf("got %q, %v from bin/hello, want hello", out, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); err == nil {
		t.Errorf("got a write into the mounted package, want a read-only file system")
	}
}
