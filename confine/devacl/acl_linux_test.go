package devacl

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// devTmpfs mounts a tmpfs that allows device nodes (devtmpfs is one) and
// makes in it a node of the null device, mode 0640: only root opens it.
func devTmpfs(t *testing.T) string {
	t.Helper()
	testutil.NeedRoot(t, "make device nodes on a tmpfs")
	dir := t.TempDir()
	// The app's user must reach the node: only its own mode may stop it.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID, "mode=0755,size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	node := filepath.Join(dir, "null")
	if err := unix.Mknod(node, unix.S_IFCHR|0o640, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(node, 0o640); err != nil { // past the umask
		t.Fatal(err)
	}
	return node
}

// openAs opens node for reading and writing as uid, in a child process.
func openAs(t *testing.T, node string, uid int) error {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "exec 3<>"+node)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.New(string(out))
	}
	return nil
}

func TestGrantRevokeNode(t *testing.T) {
	node := devTmpfs(t)
	const app, other = 70991, 70992
	var before unix.Stat_t
	if err := unix.Stat(node, &before); err != nil {
		t.Fatal(err)
	}
	if err := openAs(t, node, app); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("the app's user opening a 0640 root node before any grant: got %v, want permission denied", err)
	}
	if err := openAs(t, node, 0); err != nil {
		t.Fatalf("root cannot open the node: %v", err)
	}
	if err := Grant(node, app, PermRead|PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := Grant(node, app, PermRead|PermWrite); err != nil {
		t.Fatalf("second grant: %v", err)
	}
	if err := openAs(t, node, app); err != nil {
		t.Errorf("the app's user cannot open the node after the grant: %v", err)
	}
	if openAs(t, node, other) == nil {
		t.Errorf("another uid opened the node granted to %d", app)
	}
	a, err := Get(node)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.String(), "user::rw-,user:70991:rw-,group::r--,mask::rw-,other::---"; got != want {
		t.Errorf("ACL after grant: got %s, want %s", got, want)
	}
	if err := Revoke(node, app); err != nil {
		t.Fatal(err)
	}
	if openAs(t, node, app) == nil {
		t.Error("the app's user still opens the node after the revoke")
	}
	var after unix.Stat_t
	if err := unix.Stat(node, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid {
		t.Errorf("node after grant and revoke: mode %o uid %d gid %d, want %o %d %d", after.Mode, after.Uid, after.Gid, before.Mode, before.Uid, before.Gid)
	}
	if _, err := unix.Getxattr(node, XattrName, nil); !errors.Is(err, unix.ENODATA) {
		t.Errorf("the ACL attribute is still there after the last revoke: %v", err)
	}
	if err := Revoke(node, app); err != nil {
		t.Errorf("revoking again: %v", err)
	}
}

func TestGrantRefusesNonDevices(t *testing.T) {
	testutil.NeedRoot(t, "set ACLs")
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	testutil.WriteFileMode(t, file, "x", 0o600)
	link := filepath.Join(dir, "link")
	testutil.Symlink(t, "/dev/null", link)
	for _, p := range []string{file, dir, link} {
		if err := Grant(p, 70991, PermRead); err == nil {
			t.Errorf("Grant(%s) succeeded, want a refusal (not a device node)", p)
		}
	}
}
