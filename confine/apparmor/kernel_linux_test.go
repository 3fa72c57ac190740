package apparmor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/internal/dirs"
)

func TestEnabledFakeRoot(t *testing.T) {
	root := t.TempDir()
	old := dirs.Root
	dirs.SetRootDir(root)
	t.Cleanup(func() { dirs.SetRootDir(old) })
	if Enabled() {
		t.Error("Enabled() = true in an empty root")
	}
	param := filepath.Join(root, enabledParam)
	os.MkdirAll(filepath.Dir(param), 0o755)
	os.WriteFile(param, []byte("Y\n"), 0o644)
	if Enabled() {
		t.Error("Enabled() = true without securityfs")
	}
	os.MkdirAll(filepath.Join(root, apparmorFS), 0o755)
	if !Enabled() {
		t.Error("Enabled() = false with the module enabled and securityfs present")
	}
	os.WriteFile(param, []byte("N\n"), 0o644)
	if Enabled() {
		t.Error("Enabled() = true with the module disabled")
	}
}

func TestLoadAndExecAsFakeRoot(t *testing.T) {
	root := t.TempDir()
	old := dirs.Root
	dirs.SetRootDir(root)
	t.Cleanup(func() { dirs.SetRootDir(old) })

	if err := ExecAs("paddock.hello.hello"); err == nil {
		t.Error("ExecAs in an empty root: got no error")
	}
	if err := ExecAs("paddock.hello.x\nexec unconfined"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ExecAs with a bad label: got %v, want ErrInvalid", err)
	}
	// Only the old interface exists: ExecAs falls back to it.
	attr := filepath.Join(root, "proc/thread-self/attr/exec")
	os.MkdirAll(filepath.Dir(attr), 0o755)
	os.WriteFile(attr, nil, 0o644)
	if err := ExecAs("paddock.hello.hello"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(attr); string(b) != "exec paddock.hello.hello" {
		t.Errorf("got %q in %s, want %q", b, attr, "exec paddock.hello.hello")
	}

	os.MkdirAll(filepath.Join(root, filepath.Dir(enabledParam)), 0o755)
	os.WriteFile(filepath.Join(root, enabledParam), []byte("Y\n"), 0o644)
	os.MkdirAll(filepath.Join(root, apparmorFS), 0o755)
	replace := filepath.Join(root, apparmorFS, ".replace")
	os.WriteFile(replace, nil, 0o644)
	if err := Load([]byte("policy")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(replace); string(b) != "policy" {
		t.Errorf("got %q in .replace, want %q", b, "policy")
	}
	if err := Load(nil); err == nil {
		t.Error("Load(nil): got no error")
	}
}
