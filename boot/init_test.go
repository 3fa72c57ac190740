package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/loopmount"
	"paddock.dev/paddock/internal/testutil"
)

func TestIsInit(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"/init"}, true},
		{[]string{"/sbin/init"}, true},
		{[]string{"/usr/bin/paddock", "init"}, true},
		{[]string{"paddock", "init", "--help"}, true},
		{[]string{"/usr/bin/paddock", "daemon"}, false},
		{[]string{"/usr/bin/paddock"}, false},
		{[]string{"/init.d/paddock"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsInit(tt.args); got != tt.want {
			t.Errorf("IsInit(%q): got %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestWhichStage(t *testing.T) {
	root := dirstest.SetRoot(t)
	if st, err := whichStage(1); err != nil || st != stageInitramfs {
		t.Errorf("PID 1 without marker: got %v, %v, want stage 1", st, err)
	}
	if _, err := whichStage(4242); err == nil || !strings.Contains(err.Error(), "does not run on a host") {
		t.Errorf("host: got %v, want a refusal", err)
	}
	testutil.WriteFile(t, filepath.Join(root, "etc/paddock-base"), "")
	if st, err := whichStage(1); err != nil || st != stageBase {
		t.Errorf("PID 1 in the base: got %v, %v, want stage 2", st, err)
	}
	if _, err := whichStage(4242); err == nil || !strings.Contains(err.Error(), "PID 1 only") {
		t.Errorf("not PID 1 in the base: got %v, want a refusal", err)
	}
}

func TestRootMounts(t *testing.T) {
	root := dirstest.SetRoot(t)
	fakeDisk(t, root)
	parts, err := findPartitions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rootMounts(parts, "b") {
		rel := func(p string) string { return strings.TrimPrefix(p, root) }
		got = append(got, rel(m.source)+" "+rel(m.target)+" "+m.fstype)
	}
	want := []string{
		"/dev/vda4 /newroot squashfs",
		"/dev/vda5 /newroot/data ext4",
		"tmpfs /newroot/run tmpfs",
		"tmpfs /newroot/tmp tmpfs",
		"tmpfs /newroot/apps tmpfs",
		"/newroot/data/paddock /newroot/var/lib/paddock ",
		"/dev /newroot/dev ",
		"/proc /newroot/proc ",
		"/sys /newroot/sys ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChooseSlot(t *testing.T) {
	p := newEnvFile(t, envSize)
	con := newConsole(&syncBuffer{})
	if err := Write(p, &Env{Slot: "a", Try: "b"}); err != nil {
		t.Fatal(err)
	}
	if slot, err := chooseSlot(con, p, ""); err != nil || slot != "b" {
		t.Fatalf("got %s, %v, want b", slot, err)
	}
	if e, _ := Read(p); *e != (Env{Slot: "a", Trying: "b", BootCount: 1, Last: Attempt{Slot: "b", Result: ResultTrying, Boots: 1}}) {
		t.Errorf("after a try: env %+v, want trying=b", *e)
	}
	chooseSlot(con, p, "") // the try did not commit: fall back
	before, _ := os.ReadFile(p)
	if slot, err := chooseSlot(con, p, ""); err != nil || slot != "a" {
		t.Fatalf("got %s, %v, want a", slot, err)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("a normal boot wrote the environment, want no write (flash wear)")
	}
	os.WriteFile(p, bytes.Repeat([]byte{1}, envSize), 0o644)
	if _, err := chooseSlot(con, p, ""); err == nil {
		t.Error("damaged env: no error")
	}
	if slot, err := chooseSlot(con, p, "b"); err != nil || slot != "b" {
		t.Errorf("damaged env, forced b: got %s, %v", slot, err)
	}
}

func TestStage2Env(t *testing.T) {
	got := stage2Env([]string{"TERM=linux", "PADDOCK_BOOT_SLOT=a", "PADDOCK_ROOT=/x"}, "b")
	if want := []string{"TERM=linux", "PADDOCK_BOOT_SLOT=b"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PADDOCK_ROOT=/tmp/x", "PADDOCK_BOOT_SLOT=b"})
	if want := []string{"PADDOCK_BOOT_SLOT=b", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := childEnv([]string{"PATH=/bin"}); !slices.Equal(got, []string{"PATH=/bin"}) {
		t.Errorf("got %q, want PATH kept", got)
	}
}

func TestUnmountOrder(t *testing.T) {
	var mounts []loopmount.Mount
	for _, d := range []string{"/", "/proc", "/sys", "/dev", "/data", "/run", "/tmp", "/var/lib/paddock", "/sys/fs/cgroup", "/dev/pts", "/apps/hello/1", "/devices"} {
		mounts = append(mounts, loopmount.Mount{Dir: d})
	}
	got := unmountOrder(mounts)
	want := []string{"/devices", "/apps/hello/1", "/var/lib/paddock", "/tmp", "/run", "/data"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFirstLine(t *testing.T) {
	if got := firstLine("  dev-1 \nother\n"); got != "dev-1" {
		t.Errorf("got %q, want dev-1", got)
	}
}

func TestSameBuild(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !sameBuild(self, self) {
		t.Error("a binary is not the same build as itself")
	}
	if sameBuild(self, "/bin/sh") {
		t.Error("the test binary is the same build as /bin/sh")
	}
	if sameBuild(self, filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing file is the same build")
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "paddock")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if !sameBuild(self, dst) {
		t.Error("a copy is not the same build")
	}
}
