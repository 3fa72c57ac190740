package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestReplaceRestores(t *testing.T) {
	v := "old"
	t.Run("swap", func(t *testing.T) {
		Replace(t, &v, "new")
		if v != "new" {
			t.Errorf("got %q during the test, want new", v)
		}
	})
	if v != "old" {
		t.Errorf("got %q after the test, want old", v)
	}
}

func TestFiles(t *testing.T) {
	root := t.TempDir()
	WriteTree(t, root, map[string]string{"a/b/c": "one", "d": "two"})
	WriteFileMode(t, filepath.Join(root, "e/x"), "#!/bin/sh\n", 0o755)
	for name, want := range map[string]string{"a/b/c": "one", "d": "two", "e/x": "#!/bin/sh\n"} {
		if got := ReadFile(t, filepath.Join(root, name)); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "e/x")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("e/x: got %v, %v, want mode 0755", fi.Mode(), err)
	}
	Symlink(t, "d", filepath.Join(root, "link"))
	if got := ReadFile(t, filepath.Join(root, "link")); got != "two" {
		t.Errorf("link: got %q, want two", got)
	}
	p := TempFile(t, "f.txt", "three")
	if filepath.Base(p) != "f.txt" || ReadFile(t, p) != "three" {
		t.Errorf("got %s holding %q, want f.txt holding three", p, ReadFile(t, p))
	}
}

func TestNeedRoot(t *testing.T) {
	ran := false
	t.Run("inner", func(t *testing.T) {
		NeedRoot(t, "test NeedRoot")
		ran = true
	})
	if want := os.Geteuid() == 0; ran != want {
		t.Errorf("got ran=%v as uid %d, want %v", ran, os.Geteuid(), want)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, "three calls", time.Second, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("got %d calls, want 3", n)
	}
	var failed bool
	t.Run("timeout", func(t *testing.T) {
		ft := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() { // Fatalf ends the goroutine
			defer close(done)
			WaitFor(ft, "never", 30*time.Millisecond, func() bool { return false })
		}()
		<-done
		failed = ft.msg == "never: not within 30ms"
	})
	if !failed {
		t.Error("got no failure, want \"never: not within 30ms\"")
	}
}

// fatalRecorder records a Fatalf instead of failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
