package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/atomicfile"
)

// TestChangedPolicyReplacesSandbox pins issue 10's stale kept sandbox: a
// launch after the agent changed a command's policy file must get the new
// policy, by the Go launcher and by the C fast path, and the sandbox kept
// for the old policy must end. Before the fix the fast path joined the kept
// sandbox whatever the policy said: fast=true failed, read_sys stayed
// ENOENT after the agent's policy mounted /sys.
func TestChangedPolicyReplacesSandbox(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d)
	for _, fast := range []bool{false, true} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			setPolicyMounts(t, d, nil)
			// The Go launcher builds the sandbox; the next launch joins it.
			runEscape(t, d, false, []string{"run", "escape", "--", "read_sys"})
			old := sandboxInit(t, d, "escape", "escape", 1)
			if got := runEscape(t, d, fast, []string{"run", "escape", "--", "read_sys"})["read_sys"]; got != "ENOENT" {
				t.Fatalf("read_sys without a /sys mount: got %q, want ENOENT", got)
			}
			if now := sandboxInit(t, d, "escape", "escape", 1); now != old {
				t.Fatalf("the launch did not join the kept sandbox %d (now %d)", old, now)
			}

			// The agent changes the policy (as a connection of
			// hardware-observe will): /sys appears, in a new sandbox.
			setPolicyMounts(t, d, []profiles.Mount{{Source: "/sys", Target: "/sys"}})
			cmd := runEscapeCmd(d, fast, "read_sys")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "read_sys: allowed") {
				t.Fatalf("read_sys after the policy mounted /sys: %v\n%s", err, out)
			}
			if !waitGone(old, 5e9) {
				t.Errorf("the sandbox %d kept for the old policy still runs", old)
			}
			renewed := sandboxInit(t, d, "escape", "escape", 1)
			if renewed == old {
				t.Fatalf("the launch after the policy changed used the old sandbox %d", old)
			}
			// The fast path joins the new sandbox, which has /sys.
			if got := runEscape(t, d, fast, []string{"run", "escape", "--", "read_sys"})["read_sys"]; got != "allowed" {
				t.Errorf("read_sys in the new sandbox: got %q, want allowed", got)
			}
			if now := sandboxInit(t, d, "escape", "escape", 1); now != renewed {
				t.Errorf("the launch did not join the new sandbox %d (now %d)", renewed, now)
			}
		})
	}
}

// setPolicyMounts rewrites the policy of escape.escape with mounts, as the
// agent does: atomically, root-only.
func setPolicyMounts(t *testing.T, d *device, mounts []profiles.Mount) {
	t.Helper()
	path := d.path("var/lib/paddock/profiles/escape/1/escape.policy")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p profiles.Policy
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	p.Mounts = mounts
	data, err = p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
