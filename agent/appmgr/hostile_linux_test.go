package appmgr

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/revisions"
)

// hostilePackage builds a package with mksquashfs straight from the tree
// that build lays out in a directory, as a publisher could without
// 'paddock pack' (which refuses such trees), and returns its bytes.
func hostilePackage(t *testing.T, build func(dir string)) []byte {
	t.Helper()
	src := t.TempDir()
	build(src)
	out := filepath.Join(t.TempDir(), "hostile.pdk")
	cmd := exec.Command("mksquashfs", src, out, "-noappend", "-quiet", "-no-progress", "-all-root", "-no-xattrs")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const helloManifest = "name: hello\nversion: \"1.0\"\napps:\n  hello:\n    command: bin/hello\n"

// goodTree lays out a hello app, with a manifest unless manifest is false.
func goodTree(t *testing.T, dir string, manifest bool) {
	t.Helper()
	if manifest {
		testutil.WriteFile(t, filepath.Join(dir, "meta/app.yaml"), helloManifest)
	} else if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(dir, "bin/hello"), "#!/bin/sh\necho hello\n")
	if err := os.Chmod(filepath.Join(dir, "bin/hello"), 0o755); err != nil {
		t.Fatal(err)
	}
}

const shadowLine = "root:$y$j9T$SECRETHASH:19000:0:99999:7:::"

// TestHostilePackages pins issue 9 item 2: the agent read meta/app.yaml
// from the mounted package following symlinks, with no size bound, and
// named commands it never checked. With a package signed by a delegated
// publisher but not made by 'paddock pack':
//   - app.yaml -> /dev/zero ran the agent out of memory (not run on the old
//     code here: it takes the machine's memory);
//   - app.yaml -> a root-only file quoted its first line in the change's error;
//   - a FIFO hung the task and every change behind it;
//   - a 2 GB sparse app.yaml allocated 2 GB before it was refused;
//   - a link into the app's writable data let the app write its own plugs;
//   - a command linked out of the package, or missing, was accepted.
//
// Each install must now fail with a clear error quoting nothing of the
// file, fast, allocating little, and leave the device as it was.
func TestHostilePackages(t *testing.T) {
	sparse, err := os.ReadFile("testdata/sparse-manifest.pdk") // meta/app.yaml: 2 GiB of holes (testdata/README)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// build lays out the package tree; root is the device root.
		build func(t *testing.T, dir string)
		pkg   []byte // instead of build
		want  string
	}{
		{
			name: "manifest links to /dev/zero",
			build: func(t *testing.T, dir string) {
				goodTree(t, dir, false)
				testutil.Symlink(t, "/dev/zero", filepath.Join(dir, "meta/app.yaml"))
			},
			want: "meta/app.yaml is a symlink",
		},
		{
			name: "manifest links to a root-only file",
			build: func(t *testing.T, dir string) {
				secret := filepath.Join(dirs.Root, "etc/shadow")
				testutil.WriteFile(t, secret, shadowLine+"\n")
				if err := os.Chmod(secret, 0o600); err != nil {
					t.Fatal(err)
				}
				goodTree(t, dir, false)
				testutil.Symlink(t, secret, filepath.Join(dir, "meta/app.yaml"))
			},
			want: "meta/app.yaml is a symlink",
		},
		{
			name: "manifest links into the app's own data",
			build: func(t *testing.T, dir string) {
				// What the app wrote into its common data, to get the network at its next install.
				testutil.WriteFile(t, filepath.Join(revisions.CommonDir("hello"), "app.yaml"), helloManifest+"    plugs: [network]\n")
				goodTree(t, dir, false)
				testutil.Symlink(t, filepath.Join(revisions.CommonDir("hello"), "app.yaml"), filepath.Join(dir, "meta/app.yaml"))
			},
			want: "meta/app.yaml is a symlink",
		},
		{
			name: "manifest is a FIFO",
			build: func(t *testing.T, dir string) {
				goodTree(t, dir, false)
				if err := unix.Mkfifo(filepath.Join(dir, "meta/app.yaml"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "meta/app.yaml is not a regular file (it is a named pipe)",
		},
		{
			name: "manifest is a 2 GB sparse file",
			pkg:  sparse,
			want: "meta/app.yaml is too large: 2147483648 bytes",
		},
		{
			name: "command links out of the package",
			build: func(t *testing.T, dir string) {
				testutil.WriteFile(t, filepath.Join(dir, "meta/app.yaml"), helloManifest)
				if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
					t.Fatal(err)
				}
				testutil.Symlink(t, "/bin/sh", filepath.Join(dir, "bin/hello"))
			},
			want: "names a command it does not hold: meta/app.yaml:5: … is a symlink to the absolute path …, outside the package",
		},
		{
			name: "command missing",
			build: func(t *testing.T, dir string) {
				testutil.WriteFile(t, filepath.Join(dir, "meta/app.yaml"), helloManifest)
			},
			want: "meta/app.yaml:5: … does not exist in the package",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			needLoopMounts(t)
			if err := f.m.StartUp(); err != nil {
				t.Fatal(err)
			}
			pkg := tt.pkg
			if pkg == nil {
				pkg = hostilePackage(t, func(dir string) { tt.build(t, dir) })
			}
			before := snapshot(t)
			id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			var mem0, mem1 runtime.MemStats
			runtime.ReadMemStats(&mem0)
			start := time.Now()
			ensureWithin(t, f, 10*time.Second)
			took := time.Since(start)
			runtime.ReadMemStats(&mem1)

			status, tasks, _ := f.change(id)
			text := f.changeText(id)
			if status != state.ErrorStatus || !strings.Contains(text, tt.want) {
				t.Errorf("change: got %s %v:\n%s\nwant Error saying %q", status, tasks, text, tt.want)
			}
			if strings.Contains(text, "SECRET") || strings.Contains(text, "network") {
				t.Errorf("the change's error quotes the file:\n%s", text)
			}
			if took > 5*time.Second {
				t.Errorf("the install took %v to fail, want it refused at once", took)
			}
			grew := mem1.TotalAlloc - mem0.TotalAlloc
			if grew > 64<<20 {
				t.Errorf("the install allocated %d MiB, want little", grew>>20)
			}
			t.Logf("refused in %v, allocating %d KiB", took.Round(time.Millisecond), grew>>10)
			if after := snapshot(t); after != before {
				t.Errorf("the failed install changed the device:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if m := mountsUnder(t, dirs.Root); len(m) != 0 {
				t.Errorf("after the failed install: got mounts %v, want none", m)
			}
			if a := f.app("hello"); a != nil {
				t.Errorf("after the failed install: got app %+v, want none", a)
			}
			// The agent goes on: a good package installs after it.
			good := packHello(t, "1.0")
			id, err = f.m.Install(f.pubBundle("hello", 1, good), bytes.NewReader(good), InstallOptions{})
			if err != nil {
				t.Fatalf("Install of a good package after it: %v", err)
			}
			ensureWithin(t, f, 10*time.Second)
			if status, tasks, err := f.change(id); status != state.DoneStatus {
				t.Errorf("install of a good package after it: got %s %v (%v), want Done", status, tasks, err)
			}
		})
	}
}

// TestCommandLinkInside checks that a command may be a symlink that stays
// inside the package: it is resolved safely at install and accepted.
func TestCommandLinkInside(t *testing.T) {
	f := newFixture(t)
	needLoopMounts(t)
	pkg := hostilePackage(t, func(dir string) {
		goodTree(t, dir, true)
		if err := os.Rename(filepath.Join(dir, "bin/hello"), filepath.Join(dir, "bin/hello.real")); err != nil {
			t.Fatal(err)
		}
		testutil.Symlink(t, "../bin/./hello.real", filepath.Join(dir, "bin/hello"))
	})
	id, err := f.m.Install(f.pubBundle("hello", 1, pkg), bytes.NewReader(pkg), InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ensureWithin(t, f, 10*time.Second)
	if status, tasks, err := f.change(id); status != state.DoneStatus {
		t.Errorf("got %s %v (%v), want Done", status, tasks, err)
	}
	if _, err := revisions.LoadManifest("hello", 1); err != nil {
		t.Errorf("the manifest was not kept: %v", err)
	}
	if fi, err := os.Stat(revisions.ManifestPath("hello", 1)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept manifest: got %v, %v, want mode 0600 (root only)", fi, err)
	}
}

// ensureWithin runs the ready tasks, failing the test if they do not end
// within d (a task that hangs would hold every later change).
func ensureWithin(t *testing.T, f *fixture, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.runner.Ensure() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("the tasks did not end within %v: a task hangs", d)
	}
}

// changeText is everything the API shows of change id: its error and the
// log of each task.
func (f *fixture) changeText(id string) string {
	f.st.Lock()
	defer f.st.Unlock()
	chg := f.st.Change(id)
	var b strings.Builder
	if err := chg.Err(); err != nil {
		b.WriteString(err.Error() + "\n")
	}
	for _, t := range chg.Tasks() {
		for _, l := range t.Log() {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// snapshot lists every path under the root but the state file, the trusted
// keys and the temporary files of the test, with the content of regular
// files, so that a test can see that nothing changed.
func snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dirs.Root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dirs.Root, p)
		if p == dirs.StateFile || strings.HasPrefix(p, dirs.TrustedDir) || strings.HasPrefix(rel, "var/lib/paddock/state") {
			return nil
		}
		b.WriteString(rel + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
