package assert

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/keys"
)

func testCommand() *Command {
	return &Command{
		ID:        "c1",
		Target:    "device/dev1",
		Action:    "reboot",
		NotBefore: testTime,
		Expiry:    testTime.Add(time.Hour),
		Body:      []byte(`{}`),
	}
}

// signCommand returns testCommand, changed by edit, signed by key.
func signCommand(t testing.TB, key *keys.PrivateKey, edit func(*Command)) *Assertion {
	t.Helper()
	c := testCommand()
	if edit != nil {
		edit(c)
	}
	a, err := SignCommand(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signOperatorKey returns an account-key delegating ops as an operator.
func signOperatorKey(t testing.TB, root, ops *keys.PrivateKey) *Assertion {
	t.Helper()
	a, err := SignAccountKey(&AccountKey{
		Account: "ops",
		Role:    RoleOperator,
		Names:   []string{"device/*", "group/lab"},
		Since:   testTime,
		Key:     ops.Public(),
	}, root)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCommand(t *testing.T) {
	key := newKey(t, "ops")
	a := signCommand(t, key, func(c *Command) { c.Body = nil })
	fp := key.Public().Fingerprint()
	wantStart := "type: command\nauthority-id: ops\nsign-key: " + fp + "\n" +
		"id: c1\ntarget: device/dev1\naction: reboot\nnot-before: 2026-03-04T05:06:07Z\nexpiry: 2026-03-04T06:06:07Z\n" +
		"body-length: 2\n\n{}\n-----BEGIN PGP SIGNATURE-----\n\n"
	if enc := a.Encode(); !strings.HasPrefix(string(enc), wantStart) {
		t.Errorf("got encoding\n%s\nwant it to start with\n%s", enc, wantStart)
	}
	b, err := Decode(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(key.Public()); err != nil {
		t.Fatal(err)
	}
	c, err := ParseCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	want := testCommand()
	want.SignKey, want.AuthorityID = fp, "ops"
	if c.SignKey != want.SignKey || c.AuthorityID != want.AuthorityID || c.ID != want.ID || c.Target != want.Target ||
		c.Action != want.Action || !c.NotBefore.Equal(want.NotBefore) || !c.Expiry.Equal(want.Expiry) || !bytes.Equal(c.Body, want.Body) {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if kind, name := c.SplitTarget(); kind != TargetDevice || name != "dev1" {
		t.Errorf("got target %q %q, want device dev1", kind, name)
	}
	if _, err := ParseAppRevision(b); err == nil {
		t.Errorf("got nil parsing a command as app-revision, want an error")
	}
	if _, err := ParseCommand(signRevision(t, key)); err == nil {
		t.Errorf("got nil parsing an app-revision as command, want an error")
	}
}

func TestCommandActions(t *testing.T) {
	key := newKey(t, "ops")
	for _, action := range CommandActions {
		a := signCommand(t, key, func(c *Command) { c.Action = action })
		if c, err := ParseCommand(a); err != nil || c.Action != action {
			t.Errorf("action %s: got %v, want it parsed", action, err)
		}
	}
}

func TestSignCommandRefuses(t *testing.T) {
	key := newKey(t, "ops")
	tests := []struct {
		name string
		edit func(*Command)
		want string
	}{
		{"empty id", func(c *Command) { c.ID = "" }, `header "id" is empty`},
		{"bad id", func(c *Command) { c.ID = "c 1" }, `id "c 1"`},
		{"long id", func(c *Command) { c.ID = strings.Repeat("a", 65) }, "id"},
		{"bare target", func(c *Command) { c.Target = "dev1" }, `target "dev1" (want device/ID or group/NAME)`},
		{"other target kind", func(c *Command) { c.Target = "fleet/all" }, `target "fleet/all"`},
		{"target glob", func(c *Command) { c.Target = "group/*" }, `target "group/*"`},
		{"target starts with dot", func(c *Command) { c.Target = "device/.x" }, `target "device/.x"`},
		{"target too long", func(c *Command) { c.Target = "device/" + strings.Repeat("a", 65) }, "target"},
		{"target with slash", func(c *Command) { c.Target = "device/a/b" }, "target"},
		{"bad action", func(c *Command) { c.Action = "format" }, `action "format"`},
		{"expiry before not-before", func(c *Command) { c.Expiry = c.NotBefore.Add(-time.Second) }, "is not after not-before"},
		{"expiry at not-before", func(c *Command) { c.Expiry = c.NotBefore }, "is not after not-before"},
		{"body not json", func(c *Command) { c.Body = []byte("reboot") }, "body is not a JSON object"},
		{"body an array", func(c *Command) { c.Body = []byte("[]") }, "body is not a JSON object"},
		{"body truncated", func(c *Command) { c.Body = []byte(`{"name":`) }, "body is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCommand()
			tt.edit(c)
			_, err := SignCommand(c, key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	cmd := string(signCommand(t, newKey(t, "ops"), nil).Encode())
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(cmd, old) {
			t.Fatalf("test assertion lacks %q", old)
		}
		return strings.Replace(cmd, old, new, 1)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"no body", replace("body-length: 2\n\n{}\n", "\n"), "command: missing body"},
		{"missing action", replace("action: reboot\n", ""), `missing header "action"`},
		{"out of order", replace("target: device/dev1\naction: reboot\n", "action: reboot\ntarget: device/dev1\n"), "out of canonical order"},
		{"unknown header", replace("action: reboot\n", "action: reboot\nsequence: 1\n"), `unknown header "sequence"`},
		{"local time", replace("not-before: 2026-03-04T05:06:07Z", "not-before: 2026-03-04T06:06:07+01:00"), "not-before"},
		{"fractional seconds", replace("expiry: 2026-03-04T06:06:07Z", "expiry: 2026-03-04T06:06:07.5Z"), "expiry"},
		{"bad action", replace("action: reboot", "action: rebootx"), `action "rebootx"`},
		{"body not json", replace("body-length: 2\n\n{}\n", "body-length: 2\n\nhi\n"), "body is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestOperatorNames(t *testing.T) {
	root, ops := newKey(t, "root"), newKey(t, "ops")
	k, err := ParseAccountKey(signOperatorKey(t, root, ops))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"device/dev1": true, "group/lab": true, "group/lab2": false, "device/a/b": false} {
		if got := k.Allows(name); got != want {
			t.Errorf("Allows(%q): got %v, want %v", name, got, want)
		}
	}
	k.Names = []string{"*"}
	for _, name := range []string{"device/dev1", "group/lab"} {
		if !k.Allows(name) {
			t.Errorf("Allows(%q) with glob *: got false, want true", name)
		}
	}
	// A publisher's globs name packages, which never hold a slash.
	_, err = SignAccountKey(&AccountKey{Account: "pub", Role: RolePublisher, Names: []string{"device/*"}, Since: testTime, Key: ops.Public()}, root)
	if err == nil || !strings.Contains(err.Error(), "names") {
		t.Errorf("got %v signing publisher names with a slash, want an error about names", err)
	}
}
