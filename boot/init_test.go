package boot

import (
	"bytes"
	"errors"
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
	rel := func(p string) string { return strings.TrimPrefix(p, root) }
	got := []string{rel(dataMount(parts).source) + " " + rel(dataMount(parts).target) + " " + dataMount(parts).fstype}
	for _, m := range rootMounts() {
		got = append(got, rel(m.source)+" "+rel(m.target)+" "+m.fstype)
	}
	want := []string{
		"/dev/vda5 /data ext4",
		"/data /newroot/data ",
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
	if err := SetTry(p, "b", 1); err != nil {
		t.Fatal(err)
	}
	if c := chooseSlot(con, p, ""); c.slot != "b" || !c.tried || len(c.problems) != 0 {
		t.Fatalf("got %+v, want slot b tried, no problems", *c)
	}
	if e, _ := Read(p); *e != (Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 1, Last: Attempt{Slot: "b", Result: ResultTrying, Boots: 1}}) {
		t.Errorf("after a try: env %+v, want trying=b", *e)
	}
	// The try did not commit: fall back, and say why.
	if c := chooseSlot(con, p, ""); c.slot != "a" || c.tried || len(c.problems) != 1 || !strings.Contains(c.problems[0], "the try of slot b failed: not committed after 1 boot(s)") {
		t.Fatalf("got %+v, want slot a and the failed try recorded", *c)
	}
	before, _ := os.ReadFile(p)
	if c := chooseSlot(con, p, ""); c.slot != "a" || len(c.problems) != 0 {
		t.Fatalf("got %+v, want a", *c)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("a normal boot wrote the environment, want no write (flash wear)")
	}
	if c := chooseSlot(con, p, "b"); c.slot != "b" || c.tried || !c.forced {
		t.Errorf("forced b: got %+v", *c)
	}
}

// TestRefuse: a slot refused at boot (no valid assertion, verity) falls
// back: a try ends at once, marked bad in the environment; a refused
// known-good slot falls back to the other unless it is bad; a forced slot
// has no fallback.
func TestRefuse(t *testing.T) {
	why := errors.New("verity: cannot load the table")
	tests := []struct {
		name     string
		env      Env
		forced   string
		refused  []string // slots refused before, in order
		want     string   // the slot to try next, or ""
		wantBad  string
		wantEnvs bool // the environment is written
	}{
		{"tried slot refused", Env{Slot: "a", Try: "b", Attempts: 3}, "", []string{"b"}, "a", "b", true},
		{"known-good refused: the other", Env{Slot: "a"}, "", []string{"a"}, "b", "", false},
		{"known-good refused, the other bad", Env{Slot: "a", Bad: "b", BadWhy: "x"}, "", []string{"a"}, "", "b", false},
		{"both refused", Env{Slot: "a"}, "", []string{"a", "b"}, "", "", false},
		{"tried then known-good refused", Env{Slot: "a", Try: "b"}, "", []string{"b", "a"}, "", "b", true},
		{"forced", Env{Slot: "a"}, "b", []string{"b"}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newEnvFile(t, envSize)
			Write(p, &tt.env)
			con := newConsole(&syncBuffer{})
			c := chooseSlot(con, p, tt.forced)
			refused := map[string]bool{}
			rec := &BootRecord{}
			var next string
			for i, slot := range tt.refused {
				if i == 0 && slot != c.slot {
					t.Fatalf("the rule chose %s, the test refuses %s first", c.slot, slot)
				}
				next = refuse(con, c, slot, why, refused, rec)
			}
			if next != tt.want {
				t.Errorf("got next slot %q, want %q", next, tt.want)
			}
			got, _ := Read(p)
			if got.Bad != tt.wantBad {
				t.Errorf("got bad %q in %+v, want %q", got.Bad, *got, tt.wantBad)
			}
			if tt.wantEnvs && (got.Last.Result != ResultFailed || !strings.Contains(got.Last.Reason, "refused at boot: verity: cannot load the table")) {
				t.Errorf("got the last attempt %+v, want it failed with the reason", got.Last)
			}
			if tt.want != "" && !strings.Contains(rec.Fallback, "refused at boot") {
				t.Errorf("got the record's fallback %q, want why", rec.Fallback)
			}
		})
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
