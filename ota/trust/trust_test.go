package trust

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

var (
	since = asserttest.Since // 2026-01-01
	until = asserttest.Until // 2027-01-01
	now   = asserttest.Now   // 2026-06-01 12:00
)

type fixture struct {
	root, other, pub, pub2 *keys.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gen := func(name string) *keys.PrivateKey { return asserttest.Key(t, name) }
	return &fixture{root: gen("root"), other: gen("other"), pub: gen("pub"), pub2: gen("pub2")}
}

// checkRefusal checks that err is want and says, in one line, wantMsg
// (when it is not "").
func checkRefusal(t *testing.T, err, want error, wantMsg string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	if wantMsg != "" && err.Error() != wantMsg {
		t.Errorf("got message\n%s\nwant\n%s", err, wantMsg)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("got a message of several lines, want one: %q", err)
	}
}

func TestCheckRevision(t *testing.T) {
	f := newFixture(t)
	trusted := []*keys.PublicKey{f.root.Public()}
	pubFP, rootFP := f.pub.Public().Fingerprint(), f.root.Public().Fingerprint()
	good := asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, nil), asserttest.Revision(t, f.pub, "hello", nil))
	tamperedRev := bytes.Replace(good, []byte("version: 1.0"), []byte("version: 6.6"), 1)
	tamperedAK := bytes.Replace(good, []byte("names: hello,acme-*"), []byte("names: hello,*"), 1)
	takeover := asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Takeover = true })

	tests := []struct {
		name      string
		bundle    []byte
		now       time.Time
		installed string
		want      error  // nil: accepted
		wantMsg   string // the whole message when set
		publisher string // when accepted
		root      bool   // when accepted: the revision holds the root grant
	}{
		{name: "delegated", bundle: good, publisher: "pub"},
		{name: "delegated, same installed key", bundle: good, installed: pubFP, publisher: "pub"},
		{name: "signed by root", bundle: asserttest.Revision(t, f.root, "anything", nil), publisher: "root", root: true},
		{name: "delegated with the root grant", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Grants = []string{assert.GrantRoot} }), asserttest.Revision(t, f.pub, "hello", nil)),
			publisher: "pub", root: true},
		{name: "signed by root replaces another key", bundle: asserttest.Revision(t, f.root, "hello", nil), installed: pubFP, publisher: "root", root: true},
		{name: "takeover", bundle: asserttest.Bundle(takeover, asserttest.Revision(t, f.pub, "hello", nil)), installed: f.pub2.Public().Fingerprint(), publisher: "pub"},
		{name: "glob", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, nil), asserttest.Revision(t, f.pub, "acme-tool", nil)), publisher: "pub"},
		{name: "no end", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Until = time.Time{} }), asserttest.Revision(t, f.pub, "hello", nil)),
			now: until.AddDate(5, 0, 0), publisher: "pub"},
		{name: "expired and renewed", bundle: asserttest.Bundle(
			asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Until = since.AddDate(0, 1, 0) }),
			asserttest.Delegation(t, f.root, f.pub, nil), asserttest.Revision(t, f.pub, "hello", nil)), publisher: "pub"},

		{name: "empty", bundle: nil, want: ErrUnsigned,
			wantMsg: "no signed app-revision found (run 'paddock sign')"},
		{name: "unsigned", bundle: []byte("type: app-revision\nname: hello\n"), want: ErrUnsigned,
			wantMsg: "app-revision is not signed (run 'paddock sign')"},
		{name: "only a delegation", bundle: asserttest.Delegation(t, f.root, f.pub, nil), want: ErrUnsigned},
		{name: "not trusted", bundle: asserttest.Revision(t, f.pub, "hello", nil), want: ErrNotTrusted,
			wantMsg: "signature by key pub (" + keys.Short(pubFP) + ") is not trusted (trust its root with 'paddock key trust', or add its delegation with 'paddock sign --delegation')"},
		{name: "delegated by untrusted root", bundle: asserttest.Bundle(asserttest.Delegation(t, f.other, f.pub, nil), asserttest.Revision(t, f.pub, "hello", nil)), want: ErrNotTrusted,
			wantMsg: "key pub (" + keys.Short(pubFP) + ") is delegated by key other (" + keys.Short(f.other.Public().Fingerprint()) + "), which is not trusted (trust it with 'paddock key trust')"},
		{name: "delegation for another key", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub2, nil), asserttest.Revision(t, f.pub, "hello", nil)), want: ErrNotTrusted},
		{name: "tampered delegation", bundle: tamperedAK, want: ErrBadSignature},
		{name: "tampered revision", bundle: tamperedRev, want: ErrBadSignature},
		{name: "tampered root revision", bundle: bytes.Replace(asserttest.Revision(t, f.root, "x", nil), []byte("version: 1.0"), []byte("version: 2.0"), 1), want: ErrBadSignature},
		{name: "operator role", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Role = assert.RoleOperator }), asserttest.Revision(t, f.pub, "hello", nil)),
			want: ErrNotDelegated, wantMsg: "key pub (" + keys.Short(pubFP) + ") is delegated as operator, not publisher (delegate it with 'paddock key delegate --role publisher')"},
		{name: "name not delegated", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, nil), asserttest.Revision(t, f.pub, "other", nil)), want: ErrNotDelegated,
			wantMsg: `key pub (` + keys.Short(pubFP) + `) is not delegated to publish "other" (it may publish: hello, acme-*)`},
		{name: "expired", bundle: good, now: until, want: ErrExpired,
			wantMsg: "delegation of key pub expired on 2027-01-01 (renew it with 'paddock key delegate --until')"},
		{name: "not yet valid", bundle: good, now: since.Add(-time.Second), want: ErrNotYetValid,
			wantMsg: "delegation of key pub is not valid before 2026-01-01 (check the device clock)"},
		{name: "key changed", bundle: good, installed: f.pub2.Public().Fingerprint(), want: ErrKeyChanged,
			wantMsg: "hello was published by key " + keys.Short(f.pub2.Public().Fingerprint()) + ", not by key pub (" + keys.Short(pubFP) + ") (the root key holder can allow this with 'paddock key delegate --takeover')"},
		{name: "key changed from root", bundle: good, installed: rootFP, want: ErrKeyChanged},
		// The furthest-reaching delegation explains the refusal: here the
		// name mismatch, not the untrusted second root.
		{name: "best reason", bundle: asserttest.Bundle(asserttest.Delegation(t, f.other, f.pub, nil), asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Names = []string{"x"} }),
			asserttest.Revision(t, f.pub, "hello", nil)), want: ErrNotDelegated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			rev, err := CheckRevision(tt.bundle, trusted, at, tt.installed)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				if rev.Publisher != tt.publisher {
					t.Errorf("got publisher %q, want %q", rev.Publisher, tt.publisher)
				}
				if got := rev.Granted(assert.GrantRoot); got != tt.root {
					t.Errorf("got the root grant %v (grants %q), want %v", got, rev.Grants, tt.root)
				}
				return
			}
			checkRefusal(t, err, tt.want, tt.wantMsg)
		})
	}
}

func TestCheckRevisionFields(t *testing.T) {
	f := newFixture(t)
	rev, err := CheckRevision(asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, nil), asserttest.Revision(t, f.pub, "hello", nil)), []*keys.PublicKey{f.root.Public()}, now, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Revision{
		Name: "hello", Version: "1.0", Revision: 2, Arch: "arm64", Type: "app", Size: 10,
		SHA256: strings.Repeat("0f", 32), Timestamp: since, SignKey: f.pub.Public().Fingerprint(), Publisher: "pub",
	}
	if !reflect.DeepEqual(*rev, want) {
		t.Errorf("got %+v, want %+v", *rev, want)
	}
}

func TestCheckRevisionRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	trusted := []*keys.PublicKey{f.root.Public()}
	two := asserttest.Bundle(asserttest.Revision(t, f.root, "a", nil), asserttest.Revision(t, f.root, "b", nil))
	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"two revisions", two, "got 2 app-revisions, want one"},
		{"garbage", []byte("junk"), "cannot decode assertion 1 of bundle"},
		{"garbage after", append(asserttest.Revision(t, f.root, "a", nil), "junk"...), "cannot decode assertion 2 of bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckRevision(tt.bundle, trusted, now, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckRevisionNoRoots(t *testing.T) {
	f := newFixture(t)
	_, err := CheckRevision(asserttest.Revision(t, f.root, "hello", nil), nil, now, "")
	if !errors.Is(err, ErrNotTrusted) {
		t.Errorf("got %v, want ErrNotTrusted", err)
	}
}
