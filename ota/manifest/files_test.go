package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const checkYAML = `name: hello
version: '1.0'
apps:
  hello:
    command: bin/hello --greet
  web:
    command: bin/web
    daemon: simple
    health:
      command: bin/check
hooks:
  install:
`

func TestCheckFilesMapFS(t *testing.T) {
	exe := &fstest.MapFile{Data: []byte("#!/bin/sh\n"), Mode: 0o755}
	good := fstest.MapFS{"bin/hello": exe, "bin/web": exe, "bin/check": exe, "hooks/install": exe}
	without := func(name string, f *fstest.MapFile) fstest.MapFS {
		m := fstest.MapFS{}
		for k, v := range good {
			m[k] = v
		}
		delete(m, name)
		if f != nil {
			m[name] = f
		}
		return m
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string // empty: no error
	}{
		{"all there", good, ""},
		{"app missing", without("bin/hello", nil), `f:5: apps.hello.command: "bin/hello" does not exist`},
		{"health missing", without("bin/check", nil), `f:10: apps.web.health.command: "bin/check" does not exist`},
		{"default hook missing", without("hooks/install", nil), `f:12: hooks.install: "hooks/install" does not exist`},
		{"not executable", without("bin/web", &fstest.MapFile{Mode: 0o644}), `apps.web.command: "bin/web" is not executable`},
		{"a directory", without("bin/web", &fstest.MapFile{Mode: 0o755 | os.ModeDir}), `"bin/web" is not a regular file`},
	}
	m, err := Parse([]byte(checkYAML), "f")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.CheckFiles(tt.fsys)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestCheckFilesSymlinks runs on a real directory, where symlinks are
// followed only while they stay inside the package.
func TestCheckFilesSymlinks(t *testing.T) {
	tests := []struct {
		name   string
		target string // of bin/hello
		want   string
	}{
		{"inside", "../lib/hello", ""},
		{"inside through a linked dir", "../libdir/hello", ""},
		{"absolute", "/bin/sh", "absolute path"},
		{"escaping", "../../outside", "leads outside the package"},
		{"escaping through a linked dir", "../libdir/../../outside", "leads outside the package"},
		{"dangling", "../lib/nope", "does not exist"},
		{"loop", "hello", "too many levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "pkg")
			for _, d := range []string{"bin", "lib", "hooks"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"lib/hello", "bin/web", "bin/check", "hooks/install", "../outside"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("lib", filepath.Join(dir, "libdir")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, filepath.Join(dir, "bin/hello")); err != nil {
				t.Fatal(err)
			}
			m, err := Parse([]byte(checkYAML), "f")
			if err != nil {
				t.Fatal(err)
			}
			err = m.CheckFiles(os.DirFS(dir))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
