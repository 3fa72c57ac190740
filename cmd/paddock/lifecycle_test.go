package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// TestFirstSteps runs the sequence a new user runs from the README, and
// checks that a tampered package is refused with the state unchanged.
func TestFirstSteps(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.ok("pack", filepath.Join(examples, "hello"), "-o", "hello.pdk")
	d.ok("sign", "hello.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
	d.startDaemon("")

	// A flipped byte, before and after the first install: refused while it
	// streams in, and nothing changes.
	v2 := d.packHello("2.0", 2)
	tamper := func(from, to string) {
		data, err := os.ReadFile(filepath.Join(d.work, from))
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		testutil.WriteFile(t, filepath.Join(d.work, to), string(data))
	}
	tamper("hello.pdk", "tampered-1.pdk")
	tamper(v2, "tampered-2.pdk")
	checkTamperedRefused(t, d, "tampered-1.pdk", "hello.pdk.assert")

	d.ok("install", "hello.pdk")
	apps := d.list()
	if len(apps) != 1 || apps[0].Name != "hello" || apps[0].Revision != 1 {
		t.Fatalf("list --json: got %+v, want hello at revision 1", apps)
	}
	if got, err := os.Readlink(d.path("apps/hello/current")); err != nil || got != "1" {
		t.Errorf("current link: got %q, %v, want 1", got, err)
	}
	if _, err := os.Stat(d.path("apps/hello/current/bin/hello")); err != nil {
		t.Errorf("mounted revision lacks bin/hello: %v", err)
	}
	checkTamperedRefused(t, d, "tampered-2.pdk", v2+".assert")
}

func checkTamperedRefused(t *testing.T, d *device, pdk, assert string) {
	t.Helper()
	before := snapshot(t, d)
	r := d.paddock("install", pdk, "--assert", assert)
	if r.code == 0 {
		t.Fatalf("tampered package %s was installed", pdk)
	}
	if !strings.Contains(r.stderr, "sha256") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("got error %q, want one line about the sha256", r.stderr)
	}
	if after := snapshot(t, d); after != before {
		t.Errorf("a refused install changed the device:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot describes what a refused request must not change: the state
// file, the files under the root, and the mounts under it.
func snapshot(t *testing.T, d *device) string {
	t.Helper()
	var b strings.Builder
	st, err := os.ReadFile(d.path("var/lib/paddock/state.json"))
	if err == nil {
		sum := sha256.Sum256(st)
		b.WriteString("state " + hex.EncodeToString(sum[:8]) + "\n")
	}
	filepath.WalkDir(d.root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		if strings.HasPrefix(rel, "apps/hello/") && strings.Count(rel, "/") > 2 {
			return filepath.SkipDir // inside a read-only mount
		}
		if rel == "run" || strings.HasSuffix(rel, "daemon.lock") {
			return nil
		}
		b.WriteString(rel + "\n")
		return nil
	})
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], d.root) {
			b.WriteString("mount " + f[4] + "\n")
		}
	}
	return b.String()
}

// TestRefusals feeds the agent every kind of bad input the foundation issue
// lists; each gets a one-line error, a non-zero exit code, and changes nothing.
func TestRefusals(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("hello")
	v2 := d.packHello("2.0", 2)
	d.startDaemon("")
	d.ok("install", v2)

	// Material for the cases.
	v1 := d.packHello("1.0", 1)
	v3 := d.packHello("3.0", 3)
	d.ok("key", "create", "stranger")
	d.ok("key", "create", "other")
	d.ok("key", "delegate", "--key", "root", "--to", "other", "--role", "publisher", "--names", "foo*", "-o", "other.delegation")
	// A delegation that expires in a second or two: delegate refuses dates
	// in the past, and on a loaded machine a second can pass before it
	// runs ("--until ... is not in the future", a CI-like run at load 15):
	// then ask again, a little further ahead.
	var until time.Time
	for ahead := time.Second; ; ahead *= 2 {
		until = time.Now().Add(ahead).Truncate(time.Second).Add(time.Second)
		r := d.paddock("key", "delegate", "--key", "root", "--to", "pub", "--role", "publisher", "--names", "hello", "--until", until.Format(time.RFC3339), "-o", "expired.delegation")
		if r.code == 0 {
			break
		}
		if !strings.Contains(r.stderr, "not in the future") || ahead > 30*time.Second {
			t.Fatalf("paddock key delegate --until %s: exit code %d\n%s%s", until.Format(time.RFC3339), r.code, r.stdout, r.stderr)
		}
	}
	cp := func(from, to string) {
		b, err := os.ReadFile(filepath.Join(d.work, from))
		if err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, filepath.Join(d.work, to), string(b))
	}
	cp(v3, "untrusted.pdk")
	d.ok("sign", "untrusted.pdk", "--key", "stranger", "--revision", "3")
	cp(v3, "undelegated.pdk")
	// sign refuses a delegation that does not cover the name: put it in the bundle by hand.
	d.ok("sign", "undelegated.pdk", "--key", "other", "--revision", "3")
	cp("other.delegation", "undelegated.pdk.assert.tmp")
	bundle := testutil.ReadFile(t, filepath.Join(d.work, "undelegated.pdk.assert.tmp")) + testutil.ReadFile(t, filepath.Join(d.work, "undelegated.pdk.assert"))
	testutil.WriteFile(t, filepath.Join(d.work, "undelegated.pdk.assert"), bundle)
	cp(v3, "expired.pdk")
	d.ok("sign", "expired.pdk", "--key", "pub", "--revision", "3", "--delegation", "expired.delegation")
	time.Sleep(time.Until(until.Truncate(time.Second).Add(time.Second)))
	cp(v3, "truncated.pdk")
	if err := os.Truncate(filepath.Join(d.work, "truncated.pdk"), int64(len(testutil.ReadFile(t, filepath.Join(d.work, v3))))-100); err != nil {
		t.Fatal(err)
	}
	cp(v3+".assert", "truncated.pdk.assert")
	cp(v3, "unsigned.pdk")
	cp(v3, "garbage.pdk")
	testutil.WriteFile(t, filepath.Join(d.work, "garbage.pdk.assert"), "type: app-revision\nname: hello\n\nnot a signature\n")

	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"truncated", []string{"install", "truncated.pdk"}, "bytes"},
		{"unsigned", []string{"install", "unsigned.pdk"}, "paddock sign"},
		{"garbage assertion", []string{"install", "garbage.pdk"}, "assertion"},
		{"untrusted key", []string{"install", "untrusted.pdk"}, "trust"},
		{"not delegated for the name", []string{"install", "undelegated.pdk"}, "hello"},
		{"expired delegation", []string{"install", "expired.pdk"}, "expired"},
		{"assertion for another package", []string{"install", v3, "--assert", v2 + ".assert"}, "already installed"},
		{"digest of another package", []string{"install", "unsigned.pdk", "--assert", v1 + ".assert"}, "older"},
		{"lower revision", []string{"install", v1}, "revert"},
		{"same revision", []string{"install", v2}, "already installed"},
		{"refresh of an app not installed", []string{"refresh", "../nothing.pdk"}, "cannot read"},
		// Issue 9 item 6: run said " is not installed", info "..%2Fx is not installed", revert "no such API endpoint".
		{"run of a name that is no app's", []string{"run", "../x"}, `invalid app command "../x"`},
		{"info of a name that is no app's", []string{"info", "../x"}, `invalid app name "../x"`},
		{"revert of a name that is no app's", []string{"revert", ".."}, `invalid app name ".."`},
		{"remove of a name that is no app's", []string{"remove", "a/b"}, `invalid app name "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, d)
			r := d.paddock(tt.args...)
			if r.code == 0 {
				t.Fatalf("paddock %s succeeded, want a refusal", strings.Join(tt.args, " "))
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "error: ") {
				t.Errorf("got %q, want one line starting with 'error: '", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("got %q, want it to mention %q", msg, tt.want)
			}
			if after := snapshot(t, d); after != before {
				t.Errorf("a refusal changed the device:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if apps := d.list(); len(apps) != 1 || apps[0].Revision != 2 {
		t.Errorf("after the refusals: got %+v, want hello at revision 2", apps)
	}
}

// TestPackRefusals checks that pack refuses a malformed app.yaml and a path
// that escapes the package, without writing a package.
func TestPackRefusals(t *testing.T) {
	d := newDevice(t)
	tests := []struct{ name, yaml, want string }{
		{"malformed", "name: hello\nversion: [1\n", "app.yaml"},
		{"escaping command", "name: hello\nversion: \"1\"\napps:\n  hello:\n    command: ../../bin/sh\n", "escapes"},
		{"unknown field", "name: hello\nversion: \"1\"\nbogus: 1\n", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := filepath.Join(d.work, strings.ReplaceAll(tt.name, " ", "-"))
			testutil.WriteFile(t, filepath.Join(src, "meta/app.yaml"), tt.yaml)
			r := d.paddock("pack", src, "-o", "out.pdk")
			if r.code == 0 {
				t.Fatal("pack succeeded, want a refusal")
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("got %q, want it to mention %q", r.stderr, tt.want)
			}
			if _, err := os.Stat(filepath.Join(d.work, "out.pdk")); err == nil {
				t.Error("a refused pack wrote a package")
			}
		})
	}
}

// TestRefreshRevertRemove follows data through a refresh and a revert, and
// checks that only two revisions are kept.
func TestRefreshRevertRemove(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.startDaemon("")
	d.ok("install", d.packHello("1.0", 1))
	testutil.WriteFile(t, d.path("var/lib/paddock/data/hello/current/notes"), "written by 1")
	testutil.WriteFile(t, d.path("var/lib/paddock/data/hello/common/shared"), "common")

	d.ok("refresh", d.packHello("2.0", 2))
	if got := testutil.ReadFile(t, d.path("var/lib/paddock/data/hello/2/notes")); got != "written by 1" {
		t.Errorf("data carried to revision 2: got %q", got)
	}
	testutil.WriteFile(t, d.path("var/lib/paddock/data/hello/current/notes"), "written by 2")

	d.ok("revert", "hello")
	if got := testutil.ReadFile(t, d.path("var/lib/paddock/data/hello/current/notes")); got != "written by 1" {
		t.Errorf("after revert, current data: got %q, want revision 1's", got)
	}
	if apps := d.list(); apps[0].Revision != 1 || apps[0].Version != "1.0" {
		t.Errorf("after revert: got %+v, want revision 1", apps[0])
	}
	if r := d.paddock("revert", "hello"); r.code == 0 || !strings.Contains(r.stderr, "no revision older") {
		t.Errorf("second revert: got %d %q, want a refusal", r.code, r.stderr)
	}

	// Back to 2 (kept on the device), then 3: revision 1 goes.
	d.ok("install", "hello-2.pdk")
	d.ok("install", d.packHello("3.0", 3))
	apps := d.list()
	if len(apps[0].Revisions) != 2 || apps[0].Revisions[0].Revision != 2 || apps[0].Revisions[1].Revision != 3 {
		t.Errorf("kept revisions: got %+v, want 2 and 3", apps[0].Revisions)
	}
	for _, p := range []string{"apps/hello/1", "var/lib/paddock/packages/hello_1.pdk", "var/lib/paddock/data/hello/1"} {
		if _, err := os.Stat(d.path(p)); !os.IsNotExist(err) {
			t.Errorf("%s left after revision 1 was discarded (%v)", p, err)
		}
	}
	if got := testutil.ReadFile(t, d.path("var/lib/paddock/data/hello/3/notes")); got != "written by 2" {
		t.Errorf("data carried from 2 to 3: got %q", got)
	}

	d.ok("remove", "hello")
	if apps := d.list(); len(apps) != 0 {
		t.Errorf("after remove: got %+v, want no apps", apps)
	}
	for _, p := range []string{"apps/hello", "var/lib/paddock/data/hello", "var/lib/paddock/packages/hello_3.pdk"} {
		if _, err := os.Stat(d.path(p)); !os.IsNotExist(err) {
			t.Errorf("%s left after remove (%v)", p, err)
		}
	}
	if s := snapshot(t, d); strings.Contains(s, "mount ") {
		t.Errorf("mounts left after remove:\n%s", s)
	}
}
