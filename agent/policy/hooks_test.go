package policy

import (
	"slices"
	"testing"

	"paddock.dev/paddock/confine/launch"
)

// TestHookPolicies checks that each hook runs as a command of its own
// (hook-NAME), with its command line, the app's top-level plugs and its
// own, and none of another command's.
func TestHookPolicies(t *testing.T) {
	pols := resolve(t, `name: hello
version: "2.0"
plugs:
  net: {interface: network}
apps:
  hello:
    command: bin/hello
    plugs: [hardware-observe]
hooks:
  install:
  configure:
    command: bin/configure --check
    plugs: [network-bind]
`, launch.User{UID: 70001, GID: 70001})
	for _, cmd := range []string{"hello", "hook-install", "hook-configure"} {
		if pols[cmd] == nil {
			t.Fatalf("no policy of %s (got %d policies)", cmd, len(pols))
		}
	}
	if got := pols["hook-install"].Exec; !slices.Equal(got, []string{"hooks/install"}) {
		t.Errorf("install hook: got exec %q, want hooks/install", got)
	}
	if got := pols["hook-configure"].Exec; !slices.Equal(got, []string{"bin/configure", "--check"}) {
		t.Errorf("configure hook: got exec %q", got)
	}
	if got := pols["hook-configure"].Plugs; !slices.Contains(got, "network-bind") || !slices.Contains(got, "network") || slices.Contains(got, "hardware-observe") {
		t.Errorf("configure hook: got plugs %q, want network and network-bind, not hello's hardware-observe", got)
	}
	if got := pols["hook-install"].UID; got != 70001 {
		t.Errorf("install hook: got uid %d, want the app's 70001", got)
	}
}
