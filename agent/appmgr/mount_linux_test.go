package appmgr

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/pack"
	"paddock.dev/paddock/ota/revisions"
)

// needLoopMounts skips tests that loop-mount real packages.
func needLoopMounts(t *testing.T) {
	t.Helper()
	testutil.NeedLoopMounts(t)
	// Unmount whatever a failing test left under the root.
	root := dirs.Root
	t.Cleanup(func() {
		ms := mountsUnder(t, root)
		for i := len(ms) - 1; i >= 0; i-- {
			unix.Unmount(ms[i], unix.MNT_DETACH)
		}
	})
}

// packHello packs a hello app that says it is version.
func packHello(t *testing.T, version string) []byte {
	t.Helper()
	return packYAML(t, "name: hello\nversion: \""+version+"\"\napps:\n  hello:\n    command: bin/hello\n")
}

// packYAML packs an app with app.yaml appYAML and an executable
// bin/hello that says hello.
func packYAML(t *testing.T, appYAML string) []byte {
	t.Helper()
	src := t.TempDir()
	testutil.WriteFile(t, filepath.Join(src, "meta/app.yaml"), appYAML)
	testutil.WriteFileMode(t, filepath.Join(src, "bin/hello"), "#!/bin/sh\necho hello\n", 0o755)
	out := filepath.Join(t.TempDir(), "hello.pdk")
	if _, err := pack.Pack(src, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInstallManifestMismatchRollsBack installs a real package whose
// app.yaml disagrees with its assertion: the mount succeeds, the check
// after it fails, and the rollback unmounts and removes the revision.
func TestInstallManifestMismatchRollsBack(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	pkg := packHello(t, "2.0") // its assertion says 1.0
	id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.ensure()
	status, tasks, chgErr := f.change(id)
	if status != state.ErrorStatus || chgErr == nil || !strings.Contains(chgErr.Error(), "differ from what its assertion says: hello 1.0") {
		t.Errorf("change: got %s %v (%v), want Error about the assertion", status, tasks, chgErr)
	}
	if m := mountsUnder(t, dirs.Root); len(m) != 0 {
		t.Errorf("after the rollback: got mounts %v, want none", m)
	}
	for _, p := range []string{revisions.BlobPath("hello", 1), revisions.MountDir("hello", 1), dirs.AppDir("hello", "current")} {
		if exists(t, p) {
			t.Errorf("after the rollback: %s exists, want it gone", p)
		}
	}
	if a := f.app("hello"); a != nil {
		t.Errorf("after the rollback: got app %+v, want none", a)
	}
}
