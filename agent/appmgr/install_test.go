package appmgr

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/revisions"
	"paddock.dev/paddock/ota/trust"
)

// garbage is a package whose digest matches its assertion but which is no
// SquashFS image: it passes every check up to the mount.
var garbage = bytes.Repeat([]byte("not a squashfs image "), 100)

// TestInstallNotSquashFSRollsBack installs a package that cannot be
// mounted: the mount task fails and the change leaves no trace.
func TestInstallNotSquashFSRollsBack(t *testing.T) {
	f := newFixture(t)
	id, err := f.m.Install(f.pubBundle("hello", 1, garbage), bytes.NewReader(garbage), InstallOptions{})
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if !exists(t, revisions.BlobPath("hello", 1)) {
		t.Errorf("after Install: the verified blob is not stored")
	}
	f.ensure()

	status, tasks, chgErr := f.change(id)
	// The store is undone, the mount failed, and nothing after it ran.
	wantTasks := []string{"store-package=Undone", "mount-revision=Error"}
	if status != state.ErrorStatus || len(tasks) < 3 || !slices.Equal(tasks[:2], wantTasks) {
		t.Errorf("change: got %s %v, want Error starting with %v", status, tasks, wantTasks)
	}
	for _, task := range tasks[min(2, len(tasks)):] {
		if !strings.HasSuffix(task, "=Hold") {
			t.Errorf("change: got task %s after the failed mount, want it on Hold", task)
		}
	}
	if chgErr == nil || !strings.Contains(chgErr.Error(), "Mount") {
		t.Errorf("change error: got %v, want the mount task's error", chgErr)
	}
	for _, p := range []string{
		revisions.BlobPath("hello", 1),
		revisions.BlobPath("hello", 1) + ".partial",
		revisions.AssertionPath("hello", 1),
		revisions.MountDir("hello", 1),
		dirs.AppDir("hello", "current"),
		dirs.AppDir("hello", ""), // issue 9 item 6: an empty apps/hello was left
		dirs.AppDataDir("hello", ""),
		profiles.Dir("hello", 1),
	} {
		if exists(t, p) {
			t.Errorf("after the rollback: %s exists, want it gone", p)
		}
	}
	if m := mountsUnder(t, dirs.Root); len(m) != 0 {
		t.Errorf("after the rollback: got mounts %v, want none", m)
	}
	if a := f.app("hello"); a != nil {
		t.Errorf("after the rollback: got app %+v in the state, want none", a)
	}
	if _, err := f.m.Info("hello"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Info after the rollback: got %v, want ErrNotInstalled", err)
	}
	// The app is free again: the next attempt is not blocked by the failed change.
	if _, err := f.m.Install(f.pubBundle("hello", 1, garbage), bytes.NewReader(garbage), InstallOptions{}); err != nil {
		t.Errorf("Install after the rollback: %v", err)
	}
}

func TestInstallRefused(t *testing.T) {
	pkg := []byte("a package")
	tests := []struct {
		name string
		// installed is the app on the device before, if any.
		installed func(f *fixture) *App
		// bundle returns the bundle and the package.
		bundle func(f *fixture) ([]byte, []byte)
		opts   InstallOptions
		is     []error
		msg    string
	}{
		{
			name: "wrong arch",
			bundle: func(f *fixture) ([]byte, []byte) {
				r := f.revision("hello", 1, pkg)
				r.Arch = "s390x"
				return f.bundle(f.pub, f.delegPub, r), pkg
			},
			is: []error{ErrRefused}, msg: "built for s390x, this device is amd64",
		},
		{
			name: "a base",
			bundle: func(f *fixture) ([]byte, []byte) {
				r := f.revision("hello", 1, pkg)
				r.Type = "base"
				return f.bundle(f.pub, f.delegPub, r), pkg
			},
			is: []error{ErrRefused}, msg: "type base are not apps",
		},
		{
			name: "lower revision",
			installed: func(f *fixture) *App {
				return &App{Name: "hello", Current: 3, Sequence: []Revision{revisionOf(3, f.pub)}}
			},
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 2, pkg), pkg },
			is:     []error{ErrRefused}, msg: "older than the installed revision 3",
		},
		{
			name: "same revision",
			installed: func(f *fixture) *App {
				return &App{Name: "hello", Current: 2, Sequence: []Revision{revisionOf(2, f.pub)}}
			},
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 2, pkg), pkg },
			is:     []error{ErrRefused}, msg: "revision 2 is already installed",
		},
		{
			name:   "refresh of an app not installed",
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 1, pkg), pkg },
			opts:   InstallOptions{Refresh: true},
			is:     []error{ErrNotInstalled}, msg: "use 'paddock install'",
		},
		{
			name: "key changed without takeover",
			installed: func(f *fixture) *App {
				return &App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, f.pub)}}
			},
			bundle: func(f *fixture) ([]byte, []byte) {
				return f.bundle(f.pub2, f.delegation(f.pub2, false), f.revision("hello", 2, pkg)), pkg
			},
			is: []error{ErrRefused, trust.ErrKeyChanged}, msg: "--takeover",
		},
		{
			name: "kept revision with other content",
			installed: func(f *fixture) *App {
				return &App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, f.pub), revisionOf(2, f.pub)}}
			},
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 2, pkg), pkg },
			is:     []error{ErrRefused}, msg: "kept on the device with other content",
		},
		{
			name:   "digest mismatch",
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 1, pkg), []byte("a pickage") },
			is:     []error{ErrRefused, revisions.ErrDigestMismatch}, msg: "changed or truncated after signing",
		},
		{
			name:   "truncated",
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("hello", 1, pkg), pkg[:4] },
			is:     []error{ErrRefused, revisions.ErrSizeMismatch}, msg: "got 4 bytes",
		},
		{
			name:   "untrusted signer",
			bundle: func(f *fixture) ([]byte, []byte) { return f.bundle(f.pub2, nil, f.revision("hello", 1, pkg)), pkg },
			is:     []error{ErrRefused, trust.ErrNotTrusted}, msg: "not trusted",
		},
		{
			name:   "name not delegated",
			bundle: func(f *fixture) ([]byte, []byte) { return f.pubBundle("stranger", 1, pkg), pkg },
			is:     []error{ErrRefused, trust.ErrNotDelegated}, msg: `"stranger"`,
		},
		{
			name:   "unsigned",
			bundle: func(f *fixture) ([]byte, []byte) { return []byte("type: app-revision\nname: hello\n"), pkg },
			is:     []error{ErrRefused},
		},
		{
			name: "no trusted keys",
			bundle: func(f *fixture) ([]byte, []byte) {
				if err := os.RemoveAll(dirs.TrustedDir); err != nil {
					f.t.Fatal(err)
				}
				return f.pubBundle("hello", 1, pkg), pkg
			},
			is: []error{ErrRefused}, msg: "paddock key trust",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var before *App
			if tt.installed != nil {
				before = tt.installed(f)
				f.installed(before)
			}
			bundle, data := tt.bundle(f)
			id, err := f.m.Install(bundle, bytes.NewReader(data), tt.opts)
			if err == nil {
				t.Fatalf("Install: got change %s, want a refusal", id)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("got %q, want errors.Is %v", err, target)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
			if n := f.changeCount(); n != 0 {
				t.Errorf("a refusal made %d changes, want none", n)
			}
			if got := f.app("hello"); (got == nil) != (before == nil) || got != nil && got.Current != before.Current {
				t.Errorf("a refusal changed the app: got %+v, want %+v", got, before)
			}
			if entries, _ := os.ReadDir(dirs.PackagesDir); len(entries) != 0 {
				t.Errorf("a refusal left %d files in the package store, want none", len(entries))
			}
		})
	}
}

// TestInstallTakeover checks that a key the root allowed to take over may
// publish a refresh of an app another key published.
func TestInstallTakeover(t *testing.T) {
	f := newFixture(t)
	f.installed(&App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, f.pub)}})
	pkg := []byte("revision 2")
	id, err := f.m.Install(f.bundle(f.pub2, f.delegation(f.pub2, true), f.revision("hello", 2, pkg)), bytes.NewReader(pkg), InstallOptions{Refresh: true})
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	f.st.Lock()
	defer f.st.Unlock()
	chg := f.st.Change(id)
	var rev Revision
	if err := chg.Get("revision", &rev); err != nil {
		t.Fatal(err)
	}
	if chg.Kind() != "refresh" || rev.SignKey != f.pub2.Public().Fingerprint() || rev.Publisher != "pub2" {
		t.Errorf("got change %s of revision signed by %s (%s), want a refresh signed by pub2", chg.Kind(), rev.SignKey, rev.Publisher)
	}
}

// failReader fails the test if the package is read.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("the package of a revision kept on the device was read")
	return 0, io.EOF
}

// TestInstallKeptRevision installs a revision the device keeps (after a
// revert): the change only links it, with the health gate of a refresh
// around it, and the upload is not stored again.
func TestInstallKeptRevision(t *testing.T) {
	f := newFixture(t)
	pkg := []byte("revision 2")
	two := revisionOf(2, f.pub)
	r := f.revision("hello", 2, pkg)
	two.Size, two.SHA256 = r.Size, r.SHA256
	f.installed(&App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, f.pub), two}})

	id, err := f.m.Install(f.pubBundle("hello", 2, pkg), failReader{t}, InstallOptions{})
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	_, tasks, _ := f.change(id)
	if want := []string{"run-hook=Do", "gate-stop-services=Do", "link-revision=Do", "record-connections=Do", "run-hook=Do", "gate-start-services=Do", "gate-check-health=Do", "discard-old=Do"}; !slices.Equal(tasks, want) {
		t.Errorf("got tasks %v, want %v", tasks, want)
	}
	if exists(t, revisions.BlobPath("hello", 2)) {
		t.Errorf("the kept revision was stored again")
	}
}

func TestInProgress(t *testing.T) {
	f := newFixture(t)
	first, err := f.m.Install(f.pubBundle("hello", 1, garbage), bytes.NewReader(garbage), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() (string, error)
	}{
		{"install", func() (string, error) {
			return f.m.Install(f.pubBundle("hello", 1, garbage), bytes.NewReader(garbage), InstallOptions{})
		}},
		{"revert", func() (string, error) { return f.m.Revert("hello") }},
		{"remove", func() (string, error) { return f.m.Remove("hello") }},
	}
	for _, c := range calls {
		if _, err := c.call(); !errors.Is(err, ErrInProgress) || !strings.Contains(err.Error(), "change "+first) {
			t.Errorf("%s while change %s runs: got %v, want ErrInProgress naming the change", c.name, first, err)
		}
	}
	// Another app is not held up.
	other := []byte("other")
	if _, err := f.m.Install(f.pubBundle("other", 1, other), bytes.NewReader(other), InstallOptions{}); err != nil {
		t.Errorf("install of another app: %v", err)
	}
}

// TestInProgressUpload starts a second install while the first one's
// package is still streaming in, before its change exists.
func TestInProgressUpload(t *testing.T) {
	f := newFixture(t)
	bundle := f.pubBundle("hello", 1, garbage)
	pr, pw := io.Pipe()
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := f.m.Install(bundle, pr, InstallOptions{})
		done <- result{id, err}
	}()
	// Once the first byte is taken, the first upload holds the app.
	if _, err := pw.Write(garbage[:1]); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Install(bundle, bytes.NewReader(garbage), InstallOptions{})
	if !errors.Is(err, ErrInProgress) || !strings.Contains(err.Error(), "another upload") {
		t.Errorf("second Install during the upload: got %v, want ErrInProgress for another upload", err)
	}
	pw.Write(garbage[1:])
	pw.Close()
	if r := <-done; r.err != nil {
		t.Fatalf("first Install: %v", r.err)
	}
}

// TestStartupDropsOrphans checks that Startup removes package blobs,
// partial uploads and downloads that neither an app nor a change in
// progress refers to. A failed download keeps its partial file for a
// command sent again; before this, nothing ever removed it, and failed
// downloads could fill the disk for good.
func TestStartupDropsOrphans(t *testing.T) {
	f := newFixture(t)
	id, err := f.m.Install(f.pubBundle("hello", 1, garbage), bytes.NewReader(garbage), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orphan := revisions.BlobPath("gone", 3)
	partial := revisions.BlobPath("hello", 2) + ".partial"
	download := downloadPath("gone", 2) + ".partial"
	kept := downloadPath("hello", 1) + ".partial" // change id's revision
	testutil.WriteFile(t, orphan, "left by a crash")
	testutil.WriteFile(t, partial, "half an upload")
	testutil.WriteFile(t, download, "half a failed download")
	testutil.WriteFile(t, kept, "half a download in progress")
	if err := f.m.StartUp(); err != nil {
		t.Fatalf("Startup: %v", err)
	}
	for _, p := range []string{revisions.BlobPath("hello", 1), kept} {
		if !exists(t, p) {
			t.Errorf("Startup dropped %s, of change %s, which is in progress", p, id)
		}
	}
	for _, p := range []string{orphan, partial, download} {
		if exists(t, p) {
			t.Errorf("Startup left %s, which nothing refers to", p)
		}
	}
}

// TestInvalidNames pins issue 9 item 6: a name that no app can have, such
// as "../x", named paths and API routes ("paddock run ../x" said " is not
// installed"); the manager refuses it before it names anything.
func TestInvalidNames(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"../x", "..", "", "a/b", "Hello", "x\n", strings.Repeat("a", 41)} {
		calls := map[string]func() error{
			"info":   func() error { _, err := f.m.Info(name); return err },
			"revert": func() error { _, err := f.m.Revert(name); return err },
			"remove": func() error { _, err := f.m.Remove(name); return err },
		}
		for what, call := range calls {
			if err := call(); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "invalid app name") {
				t.Errorf("%s %q: got %v, want a refusal of an invalid app name", what, name, err)
			}
		}
	}
	if n := f.changeCount(); n != 0 {
		t.Errorf("invalid names made %d changes, want none", n)
	}
}
