package trust

import (
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

func TestCheckBase(t *testing.T) {
	f := newFixture(t)
	trusted := []*keys.PublicKey{f.root.Public()}
	delegation := asserttest.Delegation(t, f.root, f.pub, func(ak *assert.AccountKey) { ak.Names = []string{"paddock-base"} })
	base := func(key *keys.PrivateKey, edit func(*assert.BaseRevision)) []byte {
		return asserttest.BaseRevision(t, key, "paddock-base", edit)
	}
	good := asserttest.Bundle(delegation, base(f.pub, nil))
	tests := []struct {
		name    string
		bundle  []byte
		arch    string
		running Running
		want    error
	}{
		{name: "delegated", bundle: good},
		{name: "signed by root", bundle: base(f.root, nil)},
		{name: "same revision as running", bundle: good, running: Running{Revision: 2, SignKey: f.pub.Public().Fingerprint()}},
		{name: "higher than running", bundle: good, running: Running{Revision: 1}},
		{name: "undelegated key", bundle: base(f.pub, nil), want: ErrNotTrusted},
		{name: "delegated for other names", bundle: asserttest.Bundle(asserttest.Delegation(t, f.root, f.pub, nil), base(f.pub, nil)), want: ErrNotDelegated},
		{name: "delegated by an untrusted key", bundle: asserttest.Bundle(asserttest.Delegation(t, f.other, f.pub, nil), base(f.pub, nil)), want: ErrNotTrusted},
		{name: "lower than running", bundle: good, running: Running{Revision: 3}, want: ErrOlderBase},
		{name: "other architecture", bundle: good, arch: "amd64", want: ErrWrongArch},
		{name: "other publisher than running", bundle: good, running: Running{Revision: 1, SignKey: f.pub2.Public().Fingerprint()}, want: ErrKeyChanged},
		{name: "an app-revision", bundle: asserttest.Bundle(delegation, asserttest.Revision(t, f.pub, "paddock-base", nil)), want: ErrUnsigned},
		{name: "unsigned", bundle: []byte("type: base-revision\n"), want: ErrUnsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arch := tc.arch
			if arch == "" {
				arch = "arm64"
			}
			b, err := CheckBase(tc.bundle, trusted, now, arch, tc.running)
			if tc.want != nil {
				checkRefusal(t, err, tc.want, "")
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if b.Name != "paddock-base" || b.Revision != 2 || b.Assertion == nil {
				t.Errorf("got %s, want paddock-base revision 2 with its assertion", b)
			}
		})
	}
	// An expired delegation is refused like an app's.
	_, err := CheckBase(good, trusted, until.Add(time.Hour), "arm64", Running{})
	checkRefusal(t, err, ErrExpired, "")
}
