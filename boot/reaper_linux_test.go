package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// TestReaper runs in a child test process: the reaper waits for any child,
// which would steal the exits of other tests' commands.
func TestReaper(t *testing.T) {
	if os.Getenv("BOOT_REAPER_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReaper$", "-test.v")
		cmd.Env = append(os.Environ(), "BOOT_REAPER_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// Orphans are re-parented to us, as they are to PID 1 on a device.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	r := newReaper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)
	for _, tt := range []struct {
		script string
		want   int
	}{
		{"sleep 0.2 & exit 7", 7}, // leaves an orphan behind
		{"kill -KILL $$", 128 + 9},
		{"exit 0", 0},
	} {
		exited, err := r.start(exec.Command("/bin/sh", "-c", tt.script))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-exited:
			if code != tt.want {
				t.Errorf("%q: got code %d, want %d", tt.script, code, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: no exit reported", tt.script)
		}
	}
	if !r.waitNone(5 * time.Second) {
		t.Error("the orphan was not reaped")
	}
}

func TestDeleteTree(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "init"), "x")
	testutil.WriteFile(t, filepath.Join(dir, "lib/modules/6.1/kernel/a.ko"), "x")
	os.Symlink("/etc", filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "newroot"), 0o755)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	deleteTree(fd)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	if _, err := os.Stat("/etc"); err != nil {
		t.Errorf("followed the symlink: %v", err)
	}
}

func TestMountFlags(t *testing.T) {
	if got, want := (mReadOnly | mNoDev).unix(), uintptr(unix.MS_RDONLY|unix.MS_NODEV); got != want {
		t.Errorf("got %#x, want %#x", got, want)
	}
	if got, want := (mBind | mMove | mNoSuid).unix(), uintptr(unix.MS_BIND|unix.MS_MOVE|unix.MS_NOSUID); got != want {
		t.Errorf("got %#x, want %#x", got, want)
	}
}
