package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/testutil"
)

// TestContentShare runs an app whose policy shows another app's folder, as
// a connected content plug's does: it reads the folder, writing fails with
// EROFS while the slot shares it read-only and works once it shares it
// read-write, and a provider that swaps its folder for a link to a host
// directory gets the launch refused rather than the host directory bound.
// The same device checks system-observe's mount of the host's /proc.
func TestContentShare(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d) // escape consumes, hello provides
	shared := d.path("var/lib/paddock/data/hello/common/out")
	// The providing app makes what it shares read-write writable by others.
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(shared, "hello.txt"), "shared by hello")
	target := "/var/lib/paddock/data/escape/common/shared"

	setPolicyMounts(t, d, []profiles.Mount{{Source: shared, Target: target}})
	got := runEscape(t, d, false, []string{"run", "escape", "--", "read_shared", "write_shared"})
	if got["read_shared"] != "allowed" || got["write_shared"] != "EROFS" {
		t.Errorf("read-only share: got read %q write %q, want allowed and EROFS", got["read_shared"], got["write_shared"])
	}
	setPolicyMounts(t, d, []profiles.Mount{{Source: shared, Target: target, Write: true}})
	got = runEscape(t, d, false, []string{"run", "escape", "--", "read_shared", "write_shared"})
	if got["read_shared"] != "allowed" || got["write_shared"] != "allowed" {
		t.Errorf("read-write share: got read %q write %q, want both allowed", got["read_shared"], got["write_shared"])
	}
	if data, err := os.ReadFile(filepath.Join(shared, "from-escape")); err != nil || string(data) != "data" {
		t.Errorf("the provider's folder holds %q, %v, want what the consumer wrote", data, err)
	}

	// The provider swaps its folder for a link to a host directory; a new
	// sandbox (the policy changed: /sys too) must not bind what the link
	// points at.
	hostDir := t.TempDir()
	if err := os.Chmod(hostDir, 0o777); err != nil { // writable, were it bound
		t.Fatal(err)
	}
	if err := os.RemoveAll(shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, shared); err != nil {
		t.Fatal(err)
	}
	setPolicyMounts(t, d, []profiles.Mount{{Source: "/sys", Target: "/sys"}, {Source: shared, Target: target, Write: true}})
	out, err := runEscapeCmd(d, false, "write_shared").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot open "+shared+" to share it") {
		t.Errorf("a share swapped for a link: got %v\n%s\nwant the launch refused", err, out)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the host directory behind the link got %d entries", len(entries))
	}

	// system-observe and mount-observe show the host's /proc read-only
	// beside the sandbox's own (same device: one install for both checks).
	setPolicyMounts(t, d, []profiles.Mount{{Source: "/proc", Target: "/run/host/proc"}})
	if got := runEscape(t, d, false, []string{"run", "escape", "--", "host_proc"}); got["host_proc"] != "allowed" {
		t.Errorf("host /proc: got %q, want the host's first process readable", got["host_proc"])
	}
}
