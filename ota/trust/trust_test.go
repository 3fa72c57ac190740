package trust

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

var (
	since = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	now   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

type fixture struct {
	root, other, pub, pub2 *keys.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gen := func(name string) *keys.PrivateKey {
		k, err := keys.Generate(name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return &fixture{root: gen("root"), other: gen("other"), pub: gen("pub"), pub2: gen("pub2")}
}

// delegation returns an account-key by signer for key, changed by edit.
func delegation(t *testing.T, signer, key *keys.PrivateKey, edit func(*assert.AccountKey)) []byte {
	t.Helper()
	ak := &assert.AccountKey{
		Account: key.Public().Name(),
		Role:    assert.RolePublisher,
		Names:   []string{"hello", "acme-*"},
		Since:   since,
		Until:   until,
		Key:     key.Public(),
	}
	if edit != nil {
		edit(ak)
	}
	a, err := assert.SignAccountKey(ak, signer)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

// revision returns an app-revision of name signed by key.
func revision(t *testing.T, key *keys.PrivateKey, name string) []byte {
	t.Helper()
	a, err := assert.SignAppRevision(&assert.AppRevision{
		Name: name, Version: "1.0", Revision: 2, Arch: "arm64", Size: 10,
		SHA256: strings.Repeat("0f", 32), Type: "app", Timestamp: since,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCheckRevision(t *testing.T) {
	f := newFixture(t)
	trusted := []*keys.PublicKey{f.root.Public()}
	pubFP, rootFP := f.pub.Public().Fingerprint(), f.root.Public().Fingerprint()
	good := cat(delegation(t, f.root, f.pub, nil), revision(t, f.pub, "hello"))
	tamperedRev := bytes.Replace(good, []byte("version: 1.0"), []byte("version: 6.6"), 1)
	tamperedAK := bytes.Replace(good, []byte("names: hello,acme-*"), []byte("names: hello,*"), 1)
	takeover := delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Takeover = true })

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
		{name: "signed by root", bundle: revision(t, f.root, "anything"), publisher: "root", root: true},
		{name: "delegated with the root grant", bundle: cat(delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Grants = []string{assert.GrantRoot} }), revision(t, f.pub, "hello")),
			publisher: "pub", root: true},
		{name: "signed by root replaces another key", bundle: revision(t, f.root, "hello"), installed: pubFP, publisher: "root", root: true},
		{name: "takeover", bundle: cat(takeover, revision(t, f.pub, "hello")), installed: f.pub2.Public().Fingerprint(), publisher: "pub"},
		{name: "glob", bundle: cat(delegation(t, f.root, f.pub, nil), revision(t, f.pub, "acme-tool")), publisher: "pub"},
		{name: "no end", bundle: cat(delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Until = time.Time{} }), revision(t, f.pub, "hello")),
			now: until.AddDate(5, 0, 0), publisher: "pub"},
		{name: "expired and renewed", bundle: cat(
			delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Until = since.AddDate(0, 1, 0) }),
			delegation(t, f.root, f.pub, nil), revision(t, f.pub, "hello")), publisher: "pub"},

		{name: "empty", bundle: nil, want: ErrUnsigned,
			wantMsg: "no signed app-revision found (run 'paddock sign')"},
		{name: "unsigned", bundle: []byte("type: app-revision\nname: hello\n"), want: ErrUnsigned,
			wantMsg: "app-revision is not signed (run 'paddock sign')"},
		{name: "only a delegation", bundle: delegation(t, f.root, f.pub, nil), want: ErrUnsigned},
		{name: "not trusted", bundle: revision(t, f.pub, "hello"), want: ErrNotTrusted,
			wantMsg: "signature by key pub (" + keys.Short(pubFP) + ") is not trusted (trust its root with 'paddock key trust', or add its delegation with 'paddock sign --delegation')"},
		{name: "delegated by untrusted root", bundle: cat(delegation(t, f.other, f.pub, nil), revision(t, f.pub, "hello")), want: ErrNotTrusted,
			wantMsg: "key pub (" + keys.Short(pubFP) + ") is delegated by key other (" + keys.Short(f.other.Public().Fingerprint()) + "), which is not trusted (trust it with 'paddock key trust')"},
		{name: "delegation for another key", bundle: cat(delegation(t, f.root, f.pub2, nil), revision(t, f.pub, "hello")), want: ErrNotTrusted},
		{name: "tampered delegation", bundle: tamperedAK, want: ErrBadSignature},
		{name: "tampered revision", bundle: tamperedRev, want: ErrBadSignature},
		{name: "tampered root revision", bundle: bytes.Replace(revision(t, f.root, "x"), []byte("version: 1.0"), []byte("version: 2.0"), 1), want: ErrBadSignature},
		{name: "operator role", bundle: cat(delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Role = assert.RoleOperator }), revision(t, f.pub, "hello")),
			want: ErrNotDelegated, wantMsg: "key pub (" + keys.Short(pubFP) + ") is delegated as operator, not publisher (delegate it with 'paddock key delegate --role publisher')"},
		{name: "name not delegated", bundle: cat(delegation(t, f.root, f.pub, nil), revision(t, f.pub, "other")), want: ErrNotDelegated,
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
		{name: "best reason", bundle: cat(delegation(t, f.other, f.pub, nil), delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Names = []string{"x"} }),
			revision(t, f.pub, "hello")), want: ErrNotDelegated},
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
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("got message\n%s\nwant\n%s", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got a message of several lines, want one: %q", err)
			}
		})
	}
}

func TestCheckRevisionFields(t *testing.T) {
	f := newFixture(t)
	rev, err := CheckRevision(cat(delegation(t, f.root, f.pub, nil), revision(t, f.pub, "hello")), []*keys.PublicKey{f.root.Public()}, now, "")
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
	two := cat(revision(t, f.root, "a"), revision(t, f.root, "b"))
	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"two revisions", two, "got 2 app-revisions, want one"},
		{"garbage", []byte("junk"), "cannot decode assertion 1 of bundle"},
		{"garbage after", append(revision(t, f.root, "a"), "junk"...), "cannot decode assertion 2 of bundle"},
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
	_, err := CheckRevision(revision(t, f.root, "hello"), nil, now, "")
	if !errors.Is(err, ErrNotTrusted) {
		t.Errorf("got %v, want ErrNotTrusted", err)
	}
}
