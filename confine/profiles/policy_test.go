package profiles

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
)

func TestPolicyRoundTrip(t *testing.T) {
	dirstest.SetRoot(t)
	p := testPolicy("hello", 2, "hello")
	p.HostNetwork = true
	p.Mounts = []Mount{{Source: "/sys", Target: "/sys"}}
	p.Limits = Limits{MemoryMax: 64 << 20, PidsMax: 10}
	if err := SavePolicy(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(PolicyPath("hello", 2, "hello"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("policy file: got %v, %v, want mode 0600", fi, err)
	}
	got, raw, err := LoadPolicy("hello", 2, "hello")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := p.Encode()
	if !bytes.Equal(raw, want) || !got.HostNetwork || len(got.Mounts) != 1 || got.Limits.PidsMax != 10 {
		t.Errorf("got %+v (%s), want %+v", got, raw, p)
	}
	again, _ := got.Encode()
	if !bytes.Equal(again, raw) {
		t.Error("a policy read back does not encode to the same bytes")
	}
	if cmds := PolicyCommands("hello", 2); len(cmds) != 1 || cmds[0] != "hello" {
		t.Errorf("PolicyCommands: got %q, want [hello]", cmds)
	}
	cg, err := got.CgroupSpec()
	if err != nil || len(cg.Devices) != len(DefaultDevices()) || cg.MemoryMax != 64<<20 {
		t.Errorf("cgroup spec: got %+v, %v", cg, err)
	}
}

// TestLoadPolicyRefuses checks that a damaged or foreign policy file is
// refused with a clear error, never enforced as something else (root by a
// zero uid, a program outside the app, a mount of the host's root).
func TestLoadPolicyRefuses(t *testing.T) {
	good, _ := testPolicy("hello", 2, "hello").Encode()
	tests := []struct {
		name, data, want string
	}{
		{"not json", "{", "not a policy"},
		{"unknown field", strings.Replace(string(good), `"app"`, `"privileged": true, "app"`, 1), "not a policy"},
		{"another app", strings.Replace(string(good), `"app": "hello"`, `"app": "other"`, 1), "policy of paddock.other.hello"},
		{"zero uid", strings.Replace(string(good), `"uid": 70001`, `"uid": 0`, 1), "not an app's own user"},
		{"absolute program", strings.Replace(string(good), `"bin/hello"`, `"/bin/sh"`, 1), "path inside the app"},
		{"escaping program", strings.Replace(string(good), `"bin/hello"`, `"../../bin/sh"`, 1), "path inside the app"},
		{"root mount", strings.Replace(string(good), `"exec"`, `"mounts": [{"source": "/", "target": "/host"}], "exec"`, 1), "not a clean absolute path"},
		{"bad device", strings.Replace(string(good), `"type": "c"`, `"type": "a"`, 1), "not c or b"},
		{"too large", string(good) + strings.Repeat(" ", maxPolicy), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirstest.SetRoot(t)
			if err := os.MkdirAll(Dir("hello", 2), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(PolicyPath("hello", 2, "hello"), []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadPolicy("hello", 2, "hello"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	dirstest.SetRoot(t)
	if _, _, err := LoadPolicy("hello", 2, "hello"); err == nil || !strings.Contains(err.Error(), "no policy") {
		t.Errorf("missing policy: got %v, want ErrNoPolicy", err)
	}
}

// TestGenerateFromPolicy checks that the seccomp additions and AppArmor
// snippets of a policy reach the compiled profiles (before the policy
// pipeline nothing filled them).
func TestGenerateFromPolicy(t *testing.T) {
	dirstest.SetRoot(t)
	plain := testPolicy("hello", 1, "hello")
	more := testPolicy("hello", 1, "more")
	more.Seccomp.Extra = []string{"mknodat"}
	more.AppArmor.Snippets = []string{"/dev/ttyUSB0 rw,"}
	if err := Generate([]*Policy{plain, more}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(SeccompPath("hello", 1, "hello"))
	b, _ := os.ReadFile(SeccompPath("hello", 1, "more"))
	if len(a) == 0 || bytes.Equal(a, b) {
		t.Error("a seccomp addition did not change the compiled program")
	}
	if aa, _ := os.ReadFile(AppArmorPath("hello", 1, "more")); !strings.Contains(string(aa), "/dev/ttyUSB0 rw,") {
		t.Errorf("the AppArmor profile lacks the policy's snippet:\n%s", aa)
	}
	if _, _, err := LoadPolicy("hello", 1, "more"); err != nil {
		t.Errorf("Generate did not keep the policy: %v", err)
	}
}
