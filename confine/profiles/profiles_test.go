package profiles

import (
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
)

// testPolicy is the policy of a plain command, as the agent resolves it.
func testPolicy(app string, rev int, cmd string) *Policy {
	return &Policy{
		App: app, Command: cmd, Revision: rev, UID: 70001, GID: 70001,
		Exec: []string{"bin/" + cmd}, Env: []string{"APP_NAME=" + app}, Devices: DefaultDevices(),
	}
}

func TestGenerate(t *testing.T) {
	dirstest.SetRoot(t)
	if err := Generate([]*Policy{testPolicy("hello", 3, "hello"), testPolicy("hello", 3, "web")}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"hello", "web"} {
		prog, err := os.ReadFile(SeccompPath("hello", 3, cmd))
		if err != nil || len(prog) == 0 || len(prog)%8 != 0 {
			t.Errorf("%s: seccomp program of %d bytes (%v), want a non-empty BPF program", cmd, len(prog), err)
		}
		aa, err := os.ReadFile(AppArmorPath("hello", 3, cmd))
		if err != nil || !strings.Contains(string(aa), "profile "+Label("hello", cmd)) || !strings.Contains(string(aa), "/apps/hello/3") {
			t.Errorf("%s: AppArmor profile %q (%v) does not name its label and revision", cmd, aa, err)
		}
	}
	strict, _ := os.ReadFile(SeccompPath("hello", 3, "hello"))

	dev := testPolicy("hello", 4, "hello")
	dev.Seccomp.Devmode, dev.AppArmor.Complain = true, true
	if err := Generate([]*Policy{dev}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	logged, _ := os.ReadFile(SeccompPath("hello", 4, "hello"))
	if string(logged) == string(strict) {
		t.Error("devmode and strict compiled to the same seccomp program")
	}
	if aa, _ := os.ReadFile(AppArmorPath("hello", 4, "hello")); !strings.Contains(string(aa), "complain") {
		t.Error("the devmode AppArmor profile is not in complain mode")
	}

	if err := Remove("hello", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Dir("hello", 3)); !os.IsNotExist(err) {
		t.Errorf("profiles of revision 3 left after Remove (%v)", err)
	}
	if _, err := os.Stat(Dir("hello", 4)); err != nil {
		t.Errorf("Remove of revision 3 took revision 4: %v", err)
	}
	if err := Remove("hello", 4); err != nil {
		t.Fatal(err)
	}
}

// TestCompiledAppArmorCache checks that a profile is compiled once per
// kernel: the next start loads the kept binary without apparmor_parser.
func TestCompiledAppArmorCache(t *testing.T) {
	if !hasParser() {
		t.Skip("needs apparmor_parser (make deps installs apparmor)")
	}
	dirstest.SetRoot(t)
	if err := Generate([]*Policy{testPolicy("hello", 1, "hello")}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(AppArmorPath("hello", 1, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := compiledAppArmor("hello", 1, "hello", text)
	if err != nil || len(first) == 0 {
		t.Fatalf("got %d bytes, %v, want a binary policy", len(first), err)
	}
	// Text the parser would refuse: only the cache can answer.
	second, err := compiledAppArmor("hello", 1, "hello", []byte("not a profile"))
	if err != nil || string(second) != string(first) {
		t.Errorf("second start: got %d bytes, %v, want the cached policy", len(second), err)
	}
	if err := Remove("hello", 1); err != nil {
		t.Fatal(err)
	}
}

// TestGenerateDropsStaleAppArmorCache pins a stale compiled profile: the
// binary compiled for this kernel was kept beside the profile's text and
// loaded whenever it was there, so a policy whose AppArmor snippets changed
// would have loaded the old rules (the cache survived the new text).
func TestGenerateDropsStaleAppArmorCache(t *testing.T) {
	dirstest.SetRoot(t)
	p := testPolicy("hello", 1, "hello")
	if err := Generate([]*Policy{p}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	cache := AppArmorPath("hello", 1, "hello") + ".6.1.0-test.bin"
	if err := os.WriteFile(cache, []byte("compiled"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate([]*Policy{p}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("the cache of an unchanged profile was dropped: %v", err)
	}
	p.AppArmor.Snippets = []string{"/dev/ttyUSB0 rw,"}
	if err := Generate([]*Policy{p}, Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("the binary compiled from the old profile is still there (%v): it would be loaded for the new one", err)
	}
}
