package policy

import (
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/ota/manifest"
)

// TestKeep checks what the agent's start does with the policies of a kept
// revision: writes missing ones with their profiles, leaves unchanged ones
// alone, and compiles the profiles again when a policy's seccomp or
// AppArmor part no longer matches what the catalog resolves.
func TestKeep(t *testing.T) {
	dirstest.SetRoot(t)
	m, err := manifest.Parse([]byte(appYAML), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := launch.WriteUser("hello", 3, launch.User{UID: 70001, GID: 70001}); err != nil {
		t.Fatal(err)
	}
	compiled, err := Keep(m, 3, "amd64", AutoConnections(m))
	if err != nil || !compiled {
		t.Fatalf("first start: got compiled %v, %v, want the profiles compiled", compiled, err)
	}
	for _, cmd := range []string{"hello", "serve", "quiet"} {
		if _, err := os.Stat(profiles.SeccompPath("hello", 3, cmd)); err != nil {
			t.Errorf("%s: no seccomp program: %v", cmd, err)
		}
		if _, _, err := profiles.LoadPolicy("hello", 3, cmd); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	if compiled, err := Keep(m, 3, "amd64", AutoConnections(m)); err != nil || compiled {
		t.Errorf("second start: got compiled %v, %v, want nothing compiled", compiled, err)
	}

	// A policy kept by an agent whose catalog added other rules.
	p, _, err := profiles.LoadPolicy("hello", 3, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	p.AppArmor.Snippets = []string{"/dev/ttyUSB0 rw,"}
	if err := profiles.Generate([]*profiles.Policy{p}, profiles.Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	if compiled, err := Keep(m, 3, "amd64", AutoConnections(m)); err != nil || !compiled {
		t.Errorf("after the catalog changed: got compiled %v, %v, want the profiles compiled again", compiled, err)
	}
	if q, _, err := profiles.LoadPolicy("hello", 3, "quiet"); err != nil || len(q.AppArmor.Snippets) != 0 {
		t.Errorf("after the catalog changed: got %+v, %v, want the policy the catalog resolves", q, err)
	}
	if aa, err := os.ReadFile(profiles.AppArmorPath("hello", 3, "quiet")); err != nil || strings.Contains(string(aa), "/dev/ttyUSB0") {
		t.Errorf("the AppArmor profile (%v) still holds the old rule", err)
	}
}
