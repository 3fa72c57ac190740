package trust

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

var (
	notBefore = now.Add(-time.Minute)
	expiry    = now.Add(time.Hour)
)

func target(target string) func(*assert.Command) {
	return func(c *assert.Command) { c.Target = target }
}

func TestCheckCommand(t *testing.T) {
	f := newFixture(t)
	ops := f.pub // named "pub"
	trusted := []*keys.PublicKey{f.root.Public()}
	opsFP := ops.Public().Fingerprint()
	deleg := asserttest.OperatorDelegation(t, f.root, ops, "device/*,group/lab", nil)
	good := asserttest.Bundle(deleg, asserttest.Command(t, ops, nil))
	// The same command, its signature made for device/dev2.
	retargeted := bytes.Replace(asserttest.Bundle(deleg, asserttest.Command(t, ops, target("device/dev2"))), []byte("target: device/dev2"), []byte("target: device/dev1"), 1)
	// A key that signs a command and claims to be ops.
	impostor := bytes.Replace(asserttest.Command(t, f.pub2, nil), []byte(f.pub2.Public().Fingerprint()), []byte(opsFP), 1)

	tests := []struct {
		name     string
		bundle   []byte
		now      time.Time
		groups   []string // default: lab, kiosk
		want     error    // nil: accepted
		wantMsg  string   // the whole message when set
		operator string   // when accepted
	}{
		{name: "device", bundle: good, operator: "pub"},
		{name: "group the device is in", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("group/lab"))), operator: "pub"},
		{name: "signed by root", bundle: asserttest.Command(t, f.root, target("group/kiosk")), operator: "root"},
		{name: "glob * alone", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.root, ops, "*", nil), asserttest.Command(t, ops, target("group/kiosk"))), operator: "pub"},
		{name: "glob on the name", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.root, ops, "device/dev[0-9]", nil), asserttest.Command(t, ops, nil)), operator: "pub"},
		{name: "within clock skew", bundle: good, now: notBefore.Add(-ClockSkew), operator: "pub"},
		{name: "at expiry", bundle: good, now: expiry, operator: "pub"},
		{name: "expired and renewed delegation", bundle: asserttest.Bundle(
			asserttest.OperatorDelegation(t, f.root, ops, "*", func(ak *assert.AccountKey) { ak.Until = since.AddDate(0, 1, 0) }),
			deleg, asserttest.Command(t, ops, nil)), operator: "pub"},
		{name: "names in a second delegation", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.root, ops, "device/other", nil), deleg, asserttest.Command(t, ops, nil)), operator: "pub"},

		{name: "empty", bundle: nil, want: ErrUnsigned, wantMsg: "no signed command found (send it with 'paddock fleet send')"},
		{name: "unsigned", bundle: []byte("type: command\nid: c1\n"), want: ErrUnsigned,
			wantMsg: "command is not signed (send it with 'paddock fleet send')"},
		{name: "only a delegation", bundle: deleg, want: ErrUnsigned},
		{name: "not trusted", bundle: asserttest.Command(t, ops, nil), want: ErrNotTrusted,
			wantMsg: "signature of command c1 by key pub (" + keys.Short(opsFP) + ") is not trusted (trust its root with 'paddock key trust', or send the operator's delegation with the command)"},
		{name: "wrong key", bundle: asserttest.Bundle(deleg, asserttest.Command(t, f.pub2, nil)), want: ErrNotTrusted},
		{name: "impostor key", bundle: asserttest.Bundle(deleg, impostor), want: ErrBadSignature,
			wantMsg: "signature of command c1 by key pub (" + keys.Short(opsFP) + ") is invalid (send it again with 'paddock fleet send')"},
		{name: "untrusted root", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.other, ops, "*", nil), asserttest.Command(t, ops, nil)), want: ErrNotTrusted,
			wantMsg: "key pub (" + keys.Short(opsFP) + ") is delegated by key other (" + keys.Short(f.other.Public().Fingerprint()) + "), which is not trusted (trust it with 'paddock key trust')"},
		{name: "publisher role", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, ops, func(ak *assert.AccountKey) { ak.Names = []string{"*"} }), asserttest.Command(t, ops, nil)),
			want: ErrWrongRole, wantMsg: "key pub (" + keys.Short(opsFP) + ") is delegated as publisher, not operator, and cannot send commands (delegate it with 'paddock key delegate --role operator')"},
		{name: "delegation expired", bundle: good, now: until, want: ErrExpired,
			wantMsg: "delegation of key pub expired on 2027-01-01 (renew it with 'paddock key delegate --role operator --until')"},
		{name: "delegation not yet valid", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, func(c *assert.Command) { c.NotBefore = since.Add(-time.Hour) })),
			now: since.Add(-time.Second), want: ErrNotYetValid, wantMsg: "delegation of key pub is not valid before 2026-01-01 (check the device clock)"},
		{name: "expired", bundle: good, now: expiry.Add(time.Second), want: ErrExpired,
			wantMsg: "command c1 expired at 2026-06-01T13:00:00Z, and it is 2026-06-01T13:00:01Z (send it again with a later expiry, or check the device clock)"},
		{name: "not yet valid", bundle: good, now: notBefore.Add(-ClockSkew - time.Second), want: ErrNotYetValid,
			wantMsg: "command c1 is not valid before 2026-06-01T11:59:00Z, and it is 2026-06-01T11:53:59Z (check the device clock, or send it again with an earlier not-before)"},
		{name: "other device", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("device/dev2"))), want: ErrNotForMe,
			wantMsg: "command c1 is for device/dev2, not this device (dev1)"},
		{name: "other group", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("group/lab2"))), want: ErrNotForMe,
			wantMsg: "command c1 is for group/lab2, and this device (dev1) is only in lab, kiosk"},
		{name: "device in no group", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("group/lab"))), groups: []string{}, want: ErrNotForMe,
			wantMsg: "command c1 is for group/lab, and this device (dev1) is in no group"},
		{name: "group named like the device", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("group/dev1"))), want: ErrNotForMe},
		{name: "glob not matching", bundle: asserttest.Bundle(deleg, asserttest.Command(t, ops, target("group/kiosk"))), want: ErrNotDelegated,
			wantMsg: "key pub (" + keys.Short(opsFP) + ") is not delegated to command group/kiosk (it may command: device/*, group/lab; delegate it with 'paddock key delegate --role operator --names')"},
		{name: "glob for the other kind", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.root, ops, "group/*", nil), asserttest.Command(t, ops, nil)), want: ErrNotDelegated},
		{name: "tampered body", bundle: bytes.Replace(good, []byte(`"hello"`), []byte(`"hellp"`), 1), want: ErrBadSignature},
		{name: "tampered target", bundle: retargeted, want: ErrBadSignature},
		{name: "tampered expiry", bundle: bytes.Replace(good, []byte("expiry: 2026-06-01T13"), []byte("expiry: 2026-06-01T14"), 1), want: ErrBadSignature},
		{name: "tampered delegation", bundle: bytes.Replace(good, []byte("names: device/*,group/lab"), []byte("names: *"), 1), want: ErrBadSignature},
		{name: "tampered root command", bundle: bytes.Replace(asserttest.Command(t, f.root, nil), []byte("action: remove"), []byte("action: reboot"), 1), want: ErrBadSignature},
		// The furthest-reaching delegation explains the refusal: here the
		// role, not the untrusted second root.
		{name: "best reason", bundle: asserttest.Bundle(asserttest.OperatorDelegation(t, f.other, ops, "*", nil), asserttest.Delegation(t, f.root, ops, nil), asserttest.Command(t, ops, nil)), want: ErrWrongRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			groups := []string{"lab", "kiosk"}
			if tt.groups != nil {
				groups = tt.groups
			}
			c, err := CheckCommand(tt.bundle, trusted, at, "dev1", groups)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				if c.Operator != tt.operator {
					t.Errorf("got operator %q, want %q", c.Operator, tt.operator)
				}
				return
			}
			checkRefusal(t, err, tt.want, tt.wantMsg)
		})
	}
}

func TestCheckCommandFields(t *testing.T) {
	f := newFixture(t)
	bundle := asserttest.Bundle(asserttest.OperatorDelegation(t, f.root, f.pub, "*", nil), asserttest.Command(t, f.pub, nil))
	c, err := CheckCommand(bundle, []*keys.PublicKey{f.root.Public()}, now, "dev1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Command{
		ID: "c1", Target: "device/dev1", Action: "remove", NotBefore: notBefore, Expiry: expiry,
		Body: []byte(`{"name":"hello"}`), SignKey: f.pub.Public().Fingerprint(), Operator: "pub",
	}
	if c.ID != want.ID || c.Target != want.Target || c.Action != want.Action || !c.NotBefore.Equal(want.NotBefore) ||
		!c.Expiry.Equal(want.Expiry) || !bytes.Equal(c.Body, want.Body) || c.SignKey != want.SignKey || c.Operator != want.Operator {
		t.Errorf("got %+v, want %+v", *c, want)
	}
}

func TestCheckCommandRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	trusted := []*keys.PublicKey{f.root.Public()}
	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"two commands", asserttest.Bundle(asserttest.Command(t, f.root, nil), asserttest.Command(t, f.root, nil)), "got 2 commands in one message, want one"},
		{"garbage", []byte("junk"), "cannot decode assertion 1 of bundle"},
		{"garbage after", append(asserttest.Command(t, f.root, nil), "junk"...), "cannot decode assertion 2 of bundle"},
		{"body broken", bytes.Replace(asserttest.Command(t, f.root, nil), []byte(`{"name"`), []byte(`["name"`), 1), "body is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckCommand(tt.bundle, trusted, now, "dev1", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckCommandNoRoots(t *testing.T) {
	f := newFixture(t)
	_, err := CheckCommand(asserttest.Command(t, f.root, nil), nil, now, "dev1", nil)
	if !errors.Is(err, ErrNotTrusted) {
		t.Errorf("got %v, want ErrNotTrusted", err)
	}
}

// TestWrongRoleIsNotDelegated pins that callers testing ErrNotDelegated,
// as CheckRevision's callers did before ErrWrongRole, still see a refused role.
func TestWrongRoleIsNotDelegated(t *testing.T) {
	if !errors.Is(ErrWrongRole, ErrNotDelegated) {
		t.Errorf("got ErrWrongRole not an ErrNotDelegated, want it to be one")
	}
}

// FuzzCheckCommand checks that CheckCommand never panics on a message from
// the broker, and that nothing but the seeds' valid chain is accepted.
func FuzzCheckCommand(f *testing.F) {
	root, ops := asserttest.Key(f, "root"), asserttest.Key(f, "ops")
	ak := asserttest.OperatorDelegation(f, root, ops, "*", func(ak *assert.AccountKey) { ak.Until = time.Time{} })
	good := asserttest.Bundle(ak, asserttest.Command(f, ops, nil))
	f.Add(good)
	f.Add(asserttest.Command(f, root, target("group/lab")))
	f.Add(asserttest.Command(f, ops, nil))
	trusted := []*keys.PublicKey{root.Public()}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CheckCommand(data, trusted, now, "dev1", []string{"lab"})
		if err != nil {
			return
		}
		if c.Target != "device/dev1" && c.Target != "group/lab" {
			t.Fatalf("got a command for %s accepted, want it refused", c.Target)
		}
		if c.SignKey != root.Public().Fingerprint() && c.SignKey != ops.Public().Fingerprint() {
			t.Fatalf("got a command signed by %s accepted, want it refused", c.SignKey)
		}
	})
}
