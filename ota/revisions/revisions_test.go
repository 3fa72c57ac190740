package revisions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestStorePackage(t *testing.T) {
	dirstest.SetRoot(t)
	blob := bytes.Repeat([]byte("paddock"), 300000)
	tests := []struct {
		name    string
		input   []byte
		size    int64
		sha     string
		wantErr error
	}{
		{"good", blob, int64(len(blob)), digest(blob), nil},
		{"truncated", blob[:len(blob)-1], int64(len(blob)), digest(blob), ErrSizeMismatch},
		{"longer", append(bytes.Clone(blob), 'x'), int64(len(blob)), digest(blob), ErrSizeMismatch},
		{"flipped byte", flip(blob, 1000), int64(len(blob)), digest(blob), ErrDigestMismatch},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := i + 1
			p, err := StorePackage(bytes.NewReader(tt.input), "hello", rev, tt.size, tt.sha)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			_, statErr := os.Stat(BlobPath("hello", rev))
			if tt.wantErr != nil {
				if statErr == nil {
					t.Error("a refused package was left in the store")
				}
				if _, err := os.Stat(BlobPath("hello", rev) + ".partial"); err == nil {
					t.Error("a partial file was left in the store")
				}
				return
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, blob) {
				t.Errorf("stored blob differs from the input (err %v)", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// appOwner is the owner the data tests give the app: not root, so that
// giving it away shows.
var appOwner = Owner{UID: 70001, GID: 70002}

func TestCreateData(t *testing.T) {
	testutil.NeedRoot(t, "give data to the app's user")
	dirstest.SetRoot(t)
	if err := CreateData("hello", 1, 0, appOwner); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFileMode(t, filepath.Join(DataDir("hello", 1), "sub/state"), "v1", 0o600)
	if err := os.Symlink("sub/state", filepath.Join(DataDir("hello", 1), "link")); err != nil {
		t.Fatal(err)
	}
	// A file the app made setuid, and one of another owner.
	testutil.WriteFileMode(t, filepath.Join(DataDir("hello", 1), "rootsh"), "#!/bin/sh", 0o755)
	if err := os.Chmod(filepath.Join(DataDir("hello", 1), "rootsh"), 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(DataDir("hello", 1), "sub/state"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := CreateData("hello", 2, 1, appOwner); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(DataDir("hello", 2), "link"))
	if err != nil || string(got) != "v1" {
		t.Errorf("carried-forward data through the link: got %q, %v, want v1", got, err)
	}
	fi, err := os.Stat(filepath.Join(DataDir("hello", 2), "sub/state"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copied file mode: got %v, %v, want 0600", fi.Mode(), err)
	}
	checkOwner(t, filepath.Join(DataDir("hello", 2), "sub/state"), Owner{1234, 5678})
	// Regression (issue 9): a refresh carried an app's setuid file forward.
	fi, err = os.Stat(filepath.Join(DataDir("hello", 2), "rootsh"))
	if err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("copied setuid file: got mode %v, %v, want 0755 without setuid and setgid", fi.Mode(), err)
	}
	for _, dir := range []string{DataDir("hello", 1), DataDir("hello", 2), CommonDir("hello")} {
		checkOwner(t, dir, appOwner)
		checkMode(t, dir, 0o700)
	}
	for _, dir := range []string{filepath.Dir(CommonDir("hello"))} {
		checkOwner(t, dir, Owner{})
		checkMode(t, dir, 0o700)
	}
	// Repeating the step after a crash keeps what the new revision already wrote.
	testutil.WriteFileMode(t, filepath.Join(DataDir("hello", 2), "sub/state"), "v2", 0o600)
	if err := CreateData("hello", 2, 1, appOwner); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ReadFile(t, filepath.Join(DataDir("hello", 2), "sub/state")); got != "v2" {
		t.Errorf("repeated CreateData: got %q, want v2", got)
	}
	if err := RemoveData("hello", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(DataDir("hello", 2)); !os.IsNotExist(err) {
		t.Errorf("data of revision 2 still there: %v", err)
	}
}

// TestSecureData checks that data made before apps had users of their own
// (root's, reachable by every user, with a setuid file) is given to the
// app, its setuid bit dropped, and the tree above it closed to others.
func TestSecureData(t *testing.T) {
	testutil.NeedRoot(t, "give data to the app's user")
	dirstest.SetRoot(t)
	rootsh := filepath.Join(DataDir("hello", 1), "rootsh")
	testutil.WriteFileMode(t, rootsh, "#!/bin/sh", 0o755)
	testutil.WriteFile(t, filepath.Join(CommonDir("hello"), "f"), "x")
	if err := os.Chmod(rootsh, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{dirs.DataDir, filepath.Dir(CommonDir("hello"))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := SecureData("hello"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{DataDir("hello", 1), CommonDir("hello"), DataDir("hello", 2)} {
		if err := GiveData(dir, appOwner); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{DataDir("hello", 1), rootsh, CommonDir("hello"), filepath.Join(CommonDir("hello"), "f")} {
		checkOwner(t, p, appOwner)
	}
	if fi, err := os.Stat(rootsh); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("setuid file given to the app: got mode %v, %v, want no setuid", fi.Mode(), err)
	}
	for _, dir := range []string{dirs.DataDir, filepath.Dir(CommonDir("hello"))} {
		checkOwner(t, dir, Owner{})
		checkMode(t, dir, 0o700)
	}
	// A refresh to a revision that runs as root takes the data along.
	if err := CreateData("hello", 3, 1, Owner{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{DataDir("hello", 3), filepath.Join(DataDir("hello", 3), "rootsh"), CommonDir("hello"), filepath.Join(CommonDir("hello"), "f")} {
		checkOwner(t, p, Owner{})
	}
}

func checkOwner(t *testing.T, path string, want Owner) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if got := (Owner{int(st.Uid), int(st.Gid)}); got != want {
		t.Errorf("%s: got owner %v, want %v", path, got, want)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky); got != want {
		t.Errorf("%s: got mode %v, want %v", path, got, want)
	}
}

func TestCurrent(t *testing.T) {
	dirstest.SetRoot(t)
	if rev, err := Current("hello"); rev != 0 || err != nil {
		t.Errorf("no app: got %d, %v, want 0, nil", rev, err)
	}
	for _, rev := range []int{1, 2, 1} {
		if err := SetCurrent("hello", rev); err != nil {
			t.Fatal(err)
		}
		if got, err := Current("hello"); got != rev || err != nil {
			t.Errorf("got %d, %v, want %d", got, err, rev)
		}
	}
	if err := ClearCurrent("hello"); err != nil {
		t.Fatal(err)
	}
	if rev, _ := Current("hello"); rev != 0 {
		t.Errorf("after ClearCurrent: got %d, want 0", rev)
	}
}

func TestMountAndDiscard(t *testing.T) {
	testutil.NeedRoot(t, "mount")
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	dirstest.SetRoot(t)
	src := t.TempDir()
	testutil.WriteFile(t, filepath.Join(src, "meta/app.yaml"), "name: hello\n")
	img := filepath.Join(t.TempDir(), "hello.pdk")
	if out, err := exec.Command("mksquashfs", src, img, "-noappend", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(img)
	f, _ := os.Open(img)
	defer f.Close()
	if _, err := StorePackage(f, "hello", 1, int64(len(data)), digest(data)); err != nil {
		t.Fatal(err)
	}
	if err := Mount("hello", 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount("hello", 1) })
	if err := Mount("hello", 1); err != nil {
		t.Fatalf("repeated mount: %v", err)
	}
	if !IsMounted("hello", 1) {
		t.Error("IsMounted: got false, want true")
	}
	if got := testutil.ReadFile(t, filepath.Join(MountDir("hello", 1), "meta/app.yaml")); !strings.HasPrefix(got, "name: hello") {
		t.Errorf("read through the mount: got %q", got)
	}
	if err := CreateData("hello", 1, 0, appOwner); err != nil {
		t.Fatal(err)
	}
	if err := Discard("hello", 1); err != nil {
		t.Fatal(err)
	}
	if IsMounted("hello", 1) {
		t.Error("still mounted after Discard")
	}
	for _, p := range []string{BlobPath("hello", 1), MountDir("hello", 1), DataDir("hello", 1)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after Discard (%v)", p, err)
		}
	}
	if err := RemoveApp("hello"); err != nil {
		t.Fatal(err)
	}
}

// TestGiveDataFollowsNoSymlink checks that giving data to the app's user
// changes the symlinks in it, never what they point at: an app's data may
// hold links to host files and folders. On Linux the walk goes through
// directory descriptors, so that a folder swapped for a symlink while it
// runs is not followed either (a race this test does not stage).
func TestGiveDataFollowsNoSymlink(t *testing.T) {
	testutil.NeedRoot(t, "chown files")
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	testutil.WriteFile(t, secret, "host file")
	dir := filepath.Join(t.TempDir(), "data")
	testutil.WriteFile(t, filepath.Join(dir, "sub", "f"), "x")
	testutil.Symlink(t, secret, filepath.Join(dir, "file-link"))
	testutil.Symlink(t, outside, filepath.Join(dir, "sub", "dir-link"))
	owner := Owner{UID: 70123, GID: 70123}
	if err := GiveData(dir, owner); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "sub"), filepath.Join(dir, "sub", "f"), filepath.Join(dir, "file-link"), filepath.Join(dir, "sub", "dir-link")} {
		checkOwner(t, p, owner)
	}
	for _, p := range []string{secret, outside} {
		checkOwner(t, p, Owner{})
	}
}
