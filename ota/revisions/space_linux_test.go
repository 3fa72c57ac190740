package revisions

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// smallLibDir points dirs at a temporary root whose LibDir (the data
// partition of a device) is a tmpfs of size bytes, unmounted when the test ends.
func smallLibDir(t *testing.T, size string) {
	t.Helper()
	testutil.NeedRoot(t, "mount a small tmpfs")
	dirstest.SetRoot(t)
	testutil.MountTmpfs(t, dirs.LibDir, "size="+size+",mode=0755")
}

// TestCreateDataThatDoesNotFit pins issue 9 item 4: a refresh whose data
// copy did not fit filled the disk, left the copy's .tmp behind, and (with
// the checkpoint that followed) crashed the agent at every restart. The copy
// is now measured first and refused with how much it needs and how much is
// free, writing nothing.
func TestCreateDataThatDoesNotFit(t *testing.T) {
	smallLibDir(t, "8m")
	if err := CreateData("hello", 1, 0, appOwner); err != nil {
		t.Fatal(err)
	}
	testutil.WriteTree(t, DataDir("hello", 1), map[string]string{"big": strings.Repeat("x", 5<<20)})
	err := CreateData("hello", 2, 1, appOwner)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("got %v, want %v", err, ErrNoSpace)
	}
	for _, want := range []string{"copy the data of hello from revision 1", "needs 5.0 MiB", "is free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
	for _, p := range []string{DataDir("hello", 2), DataDir("hello", 2) + ".tmp"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %s left (%v), want nothing", p, err)
		}
	}
}

// TestFailedCopyLeavesNothing pins the other half: a copy that runs out of
// space half-way (the check passed, then something else took the space)
// removes what it copied, so the disk is as free as before.
func TestFailedCopyLeavesNothing(t *testing.T) {
	smallLibDir(t, "8m")
	if err := CreateData("hello", 1, 0, appOwner); err != nil {
		t.Fatal(err)
	}
	testutil.WriteTree(t, DataDir("hello", 1), map[string]string{"a": strings.Repeat("x", 3<<20), "b": strings.Repeat("y", 3<<20)})
	before, err := freeSpace(dirs.LibDir)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Replace(t, &SpaceMargin, -(64 << 20)) // let the copy start
	err = CreateData("hello", 2, 1, appOwner)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want the copy to run out of space", err)
	}
	if _, err := os.Lstat(DataDir("hello", 2) + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got the partial copy left (%v), want it removed", err)
	}
	after, err := freeSpace(dirs.LibDir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Bytes != before.Bytes {
		t.Errorf("got %d bytes free after the failed copy, want the %d free before", after.Bytes, before.Bytes)
	}
}

// TestStorePackageThatDoesNotFit: a package larger than the free space is
// refused before a byte of it is read or written.
func TestStorePackageThatDoesNotFit(t *testing.T) {
	smallLibDir(t, "4m")
	blob := bytes.Repeat([]byte("p"), 5<<20)
	r := bytes.NewReader(blob)
	_, err := StorePackage(r, "hello", 1, int64(len(blob)), digest(blob))
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "store the package of hello revision 1") || !strings.Contains(err.Error(), "needs 5.0 MiB") {
		t.Fatalf("got %v, want a refusal saying the package needs 5.0 MiB", err)
	}
	if r.Len() != len(blob) {
		t.Errorf("got %d bytes read from the upload, want none", len(blob)-r.Len())
	}
	if _, err := os.Stat(BlobPath("hello", 1) + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got a partial file (%v), want none", err)
	}
}
