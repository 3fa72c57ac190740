package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// installFake lays out revision 2 of app hello as an install leaves it,
// with a plain directory in place of the mount: the policies the agent
// resolved, and in the package an app.yaml that says something else,
// which launches must not read.
func installFake(t *testing.T, pols ...*profiles.Policy) {
	t.Helper()
	dirstest.SetRoot(t)
	testutil.Replace(t, &isMounted, func(name string, rev int) bool { return name == "hello" && rev == 2 })
	for _, p := range pols {
		if err := profiles.SavePolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, data string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dirs.AppDir("hello", "2"), "meta/app.yaml"), "name: hello\nversion: \"9.9\"\napps:\n  other:\n    command: bin/other\n")
	write(profiles.SeccompPath("hello", 2, "hello"), "12345678")
	if err := os.Symlink("2", dirs.AppDir("hello", "current")); err != nil {
		t.Fatal(err)
	}
}

// helloPolicies are the policies of hello revision 2: hello has a network
// plug and limits, quiet nothing.
func helloPolicies() []*profiles.Policy {
	base := func(cmd string, exec ...string) *profiles.Policy {
		return &profiles.Policy{
			App: "hello", Command: cmd, Revision: 2, UID: 70001, GID: 70002, Exec: exec,
			Env:     []string{"APP=/apps/hello/2", "APP_DATA=/var/lib/paddock/data/hello/2", "HOME=/var/lib/paddock/data/hello/2", "APP_VERSION=2.0"},
			Devices: profiles.DefaultDevices(),
		}
	}
	hello := base("hello", "bin/hello", "--loud")
	hello.Plugs, hello.HostNetwork = []string{"network"}, true
	hello.Limits = profiles.Limits{MemoryMax: 64 << 20, PidsMax: 10}
	return []*profiles.Policy{hello, base("quiet", "bin/quiet")}
}

func TestResolve(t *testing.T) {
	installFake(t, helloPolicies()...)
	t.Setenv("TERM", "xterm")
	t.Setenv("SECRET", "not for apps")
	s, err := Resolve("hello", "", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/apps/hello/2/bin/hello", "--loud", "a", "b"}; !slices.Equal(s.Argv, want) {
		t.Errorf("argv: got %q, want %q", s.Argv, want)
	}
	if s.BaseArgc != 2 {
		t.Errorf("base argc: got %d, want 2 (the command's words)", s.BaseArgc)
	}
	if s.Label != "paddock.hello.hello" || s.Revision != 2 || !s.Network || len(s.Mounts) != 0 {
		t.Errorf("got label %q revision %d network %v mounts %v", s.Label, s.Revision, s.Network, s.Mounts)
	}
	if s.UID != 70001 || s.GID != 70002 {
		t.Errorf("got uid %d gid %d, want the app's user 70001 and group 70002", s.UID, s.GID)
	}
	if s.Cgroup.MemoryMax != 64<<20 || s.Cgroup.PidsMax != 10 || len(s.Cgroup.Devices) == 0 {
		t.Errorf("cgroup: got %+v", s.Cgroup)
	}
	env := strings.Join(s.Env, "\n")
	for _, want := range []string{"APP=/apps/hello/2", "APP_DATA=/var/lib/paddock/data/hello/2", "HOME=/var/lib/paddock/data/hello/2", "APP_VERSION=2.0", "TERM=xterm"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "SECRET") {
		t.Error("the caller's environment leaked into the app's")
	}
}

func TestResolveErrors(t *testing.T) {
	installFake(t, helloPolicies()...)
	tests := []struct{ app, cmd, want string }{
		{"absent", "", "absent is not installed"},
		{"hello", "nope", `hello has no command "nope" (it has: hello, quiet)`},
		{"hello", "quiet", "cannot read the seccomp profile of paddock.hello.quiet"},
		{"../x", "", `invalid app name "../x"`},
		{"", "", `invalid app name ""`},
		{"hello", "../../x", `invalid command name "../../x"`},
	}
	for _, tt := range tests {
		if _, err := Resolve(tt.app, tt.cmd, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%q, %q): got %v, want an error containing %q", tt.app, tt.cmd, err, tt.want)
		}
	}
}

func TestSandboxKeyFollowsPolicy(t *testing.T) {
	installFake(t, helloPolicies()...)
	a, err := Resolve("hello", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Argv = []string{"/other"}
	if sandboxKey(a) != sandboxKey(&b) {
		t.Error("the key changed with the caller's arguments, which the sandbox does not depend on")
	}
	// The sandbox's init builds only mounts and the network from the
	// policy: changes to those make another sandbox, while what every
	// launch applies itself (limits, devices, the environment) keeps it, so
	// that a connection does not take a running app's sandbox away (issue 11).
	tests := []struct {
		name   string
		change func(p *profiles.Policy)
		same   bool
	}{
		{"mounts", func(p *profiles.Policy) { p.Mounts = []profiles.Mount{{Source: "/sys", Target: "/sys"}} }, false},
		{"network", func(p *profiles.Policy) { p.HostNetwork = !p.HostNetwork }, false},
		{"limits", func(p *profiles.Policy) { p.Limits.PidsMax = 11 }, true},
		{"devices", func(p *profiles.Policy) {
			p.Devices = append(p.Devices, profiles.Device{Type: "c", Major: 4, Minor: 64, Access: "rw"})
		}, true},
		{"environment", func(p *profiles.Policy) { p.Env = append(p.Env, "X=1") }, true},
	}
	orig, _, err := profiles.LoadPolicy("hello", 2, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := *orig
			tt.change(&p)
			if err := profiles.SavePolicy(&p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { profiles.SavePolicy(orig) })
			c, err := Resolve("hello", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := sandboxKey(a) == sandboxKey(c); got != tt.same {
				t.Errorf("same key after a change of %s: got %v, want %v", tt.name, got, tt.same)
			}
		})
	}
}

func TestReadMissingRecord(t *testing.T) {
	if _, ok := readRecord(filepath.Join(t.TempDir(), "none.json")); ok {
		t.Error("a missing record was read")
	}
}
