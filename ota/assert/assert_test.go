package assert

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/keys"
)

var testTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newKey(t testing.TB, name string) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRevision() *AppRevision {
	return &AppRevision{
		Name:      "hello",
		Version:   "1.0",
		Revision:  3,
		Arch:      "amd64",
		Size:      4096,
		SHA256:    strings.Repeat("ab", 32),
		Type:      "app",
		Timestamp: testTime,
	}
}

func signRevision(t testing.TB, key *keys.PrivateKey) *Assertion {
	t.Helper()
	a, err := SignAppRevision(testRevision(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func signAccountKey(t testing.TB, root, delegate *keys.PrivateKey) *Assertion {
	t.Helper()
	a, err := SignAccountKey(&AccountKey{
		Account:  "pub",
		Role:     RolePublisher,
		Names:    []string{"hello", "acme-*"},
		Since:    testTime,
		Until:    testTime.AddDate(1, 0, 0),
		Takeover: true,
		Grants:   []string{GrantRoot},
		Key:      delegate.Public(),
	}, root)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSignDecodeVerify(t *testing.T) {
	key := newKey(t, "pub")
	a := signRevision(t, key)
	enc := a.Encode()
	wantStart := "type: app-revision\nauthority-id: pub\nsign-key: " + key.Public().Fingerprint() + "\n" +
		"name: hello\nversion: 1.0\nrevision: 3\narch: amd64\nsize: 4096\nsha256: " + strings.Repeat("ab", 32) + "\n" +
		"package-type: app\ntimestamp: 2026-03-04T05:06:07Z\n\n-----BEGIN PGP SIGNATURE-----\n\n"
	if !strings.HasPrefix(string(enc), wantStart) {
		t.Errorf("got encoding\n%s\nwant it to start with\n%s", enc, wantStart)
	}
	b, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Encode(); !bytes.Equal(got, enc) {
		t.Errorf("got re-encoding\n%s\nwant\n%s", got, enc)
	}
	if !reflect.DeepEqual(b.Headers(), a.Headers()) {
		t.Errorf("got headers %v, want %v", b.Headers(), a.Headers())
	}
	if err := b.Verify(key.Public()); err != nil {
		t.Errorf("got %v verifying, want nil", err)
	}
	if got, want := b.SignKey(), key.Public().Fingerprint(); got != want {
		t.Errorf("got sign-key %s, want %s", got, want)
	}
	r, err := ParseAppRevision(b)
	if err != nil {
		t.Fatal(err)
	}
	want := testRevision()
	want.SignKey, want.AuthorityID = key.Public().Fingerprint(), "pub"
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v, want %+v", r, want)
	}

	other := newKey(t, "other")
	if err := b.Verify(other.Public()); err == nil {
		t.Errorf("got nil verifying with another key, want an error")
	}
	// A changed value still decodes but must no longer verify.
	tampered, err := Decode(bytes.Replace(enc, []byte("revision: 3\n"), []byte("revision: 4\n"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := tampered.Verify(key.Public()); err == nil {
		t.Errorf("got nil verifying a tampered assertion, want an error")
	}
}

func TestAccountKey(t *testing.T) {
	root, pub := newKey(t, "root"), newKey(t, "pub")
	a := signAccountKey(t, root, pub)
	b, err := Decode(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(root.Public()); err != nil {
		t.Fatal(err)
	}
	k, err := ParseAccountKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint != pub.Public().Fingerprint() || k.Key.Fingerprint() != k.Fingerprint {
		t.Errorf("got delegated key %s, want %s", k.Fingerprint, pub.Public().Fingerprint())
	}
	if k.SignKey != root.Public().Fingerprint() || k.Account != "pub" || k.Role != RolePublisher || !k.Takeover || !k.Granted(GrantRoot) {
		t.Errorf("got %+v, want account pub, publisher, takeover, grants root, signed by root", k)
	}
	if !k.Since.Equal(testTime) || !k.Until.Equal(testTime.AddDate(1, 0, 0)) {
		t.Errorf("got since %v until %v, want %v and a year later", k.Since, k.Until, testTime)
	}
	for name, want := range map[string]bool{"hello": true, "acme-x": true, "hello2": false, "acme": false} {
		if got := k.Allows(name); got != want {
			t.Errorf("Allows(%q): got %v, want %v", name, got, want)
		}
	}
	if _, err := ParseAppRevision(b); err == nil {
		t.Errorf("got nil parsing an account-key as app-revision, want an error")
	}
}

func TestSignRefuses(t *testing.T) {
	key, other := newKey(t, "pub"), newKey(t, "other")
	body, _ := other.Public().Armored()
	goodAK := func(hs ...Header) []Header {
		return append([]Header{
			{"account", "x"}, {"public-key-fingerprint", other.Public().Fingerprint()},
			{"role", "publisher"}, {"names", "a*"}, {"since", "2026-01-01T00:00:00Z"},
		}, hs...)
	}
	tests := []struct {
		name    string
		typ     string
		headers []Header
		body    []byte
		want    string
	}{
		{"reserved", "thing", []Header{{"sign-key", "x"}}, nil, `header "sign-key" is set by the signer`},
		{"bad type", "Thing", nil, nil, `invalid type "Thing"`},
		{"bad name", "thing", []Header{{"A", "x"}}, nil, `invalid header name "A"`},
		{"newline", "thing", []Header{{"a", "x\ny"}}, nil, `header line`},
		{"empty", "thing", []Header{{"a", ""}}, nil, `header "a" is empty`},
		{"duplicate", "thing", []Header{{"a", "1"}, {"a", "2"}}, nil, `duplicate header "a"`},
		{"unknown", AccountKeyType, goodAK(Header{"colour", "red"}), body, `unknown header "colour"`},
		{"missing", AccountKeyType, goodAK()[1:], body, `missing header "account"`},
		{"no body", AccountKeyType, goodAK(), nil, `missing body`},
		{"other key", AccountKeyType, goodAK(), []byte(mustArmor(t, key.Public())), "not public-key-fingerprint"},
		{"until before since", AccountKeyType, goodAK(Header{"until", "2025-01-01T00:00:00Z"}), body, "is not after since"},
		{"takeover false", AccountKeyType, goodAK(Header{"takeover", "false"}), body, `takeover "false"`},
		{"unknown grant", AccountKeyType, goodAK(Header{"grants", "root,admin"}), body, `unknown grant "admin" (want root, classic)`},
		{"grant twice", AccountKeyType, goodAK(Header{"grants", "root,root"}), body, `grant "root" is listed twice`},
		{"empty grant", AccountKeyType, goodAK(Header{"grants", "root,"}), body, `unknown grant ""`},
		{"operator grant", AccountKeyType, append(goodAK()[:2], Header{"role", "operator"}, Header{"names", "device/*"}, Header{"since", "2026-01-01T00:00:00Z"}, Header{"grants", "root"}), body, `grants "root" for the operator role`},
		{"bad glob", AccountKeyType, append(goodAK()[:3], Header{"names", "a["}, Header{"since", "2026-01-01T00:00:00Z"}), body, `names glob "a["`},
		{"bad role", AccountKeyType, append(goodAK()[:2], Header{"role", "admin"}, Header{"names", "a"}, Header{"since", "2026-01-01T00:00:00Z"}), body, `role "admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Sign(tt.typ, tt.headers, tt.body, key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func mustArmor(t *testing.T, k *keys.PublicKey) string {
	t.Helper()
	b, err := k.Armored()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnknownTypeSorted(t *testing.T) {
	key := newKey(t, "pub")
	a, err := Sign("thing", []Header{{"target", "dev1"}, {"id", "7"}, {"expiry", "soon"}}, []byte("reboot"), key)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range a.Headers() {
		got = append(got, h.Name)
	}
	want := []string{"type", "authority-id", "sign-key", "expiry", "id", "target", "body-length"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got header order %v, want %v", got, want)
	}
	if got, want := string(a.Body()), "reboot"; got != want {
		t.Errorf("got body %q, want %q", got, want)
	}
	if _, err := Decode(a.Encode()); err != nil {
		t.Errorf("got %v decoding, want nil", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	key := newKey(t, "pub")
	rev := string(signRevision(t, key).Encode())
	ak := string(signAccountKey(t, key, newKey(t, "d")).Encode())
	fp := key.Public().Fingerprint()
	sigStart := strings.Index(rev, "-----BEGIN")
	replace := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("test assertion lacks %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "empty input"},
		{"blank", "\n", "no headers"},
		{"unsigned", rev[:sigStart], ErrUnsigned.Error()},
		{"unsigned without blank line", rev[:sigStart-1], ErrUnsigned.Error()},
		{"trailing garbage", rev + "x", "unexpected data after the signature"},
		{"two assertions", rev + rev, "unexpected data after the signature"},
		{"unterminated header", "type: x", "unexpected end"},
		{"duplicate header", replace(rev, "version: 1.0\n", "version: 1.0\nversion: 1.0\n"), `duplicate header "version"`},
		{"unknown header", replace(rev, "version: 1.0\n", "version: 1.0\ncolour: red\n"), `unknown header "colour"`},
		{"missing header", replace(rev, "arch: amd64\n", ""), `missing header "arch"`},
		{"out of order", replace(rev, "name: hello\nversion: 1.0\n", "version: 1.0\nname: hello\n"), "out of canonical order"},
		{"type not first", replace(rev, "type: app-revision\nauthority-id: pub\n", "authority-id: pub\ntype: app-revision\n"), `header 1 must be "type"`},
		{"no sign-key", replace(rev, "sign-key: "+fp+"\n", ""), `header 3 must be "sign-key"`},
		{"no space", replace(rev, "name: hello", "name:hello"), `want "name: value"`},
		{"two spaces", replace(rev, "name: hello", "name:  hello"), "surrounding spaces"},
		{"trailing space", replace(rev, "name: hello", "name: hello "), "surrounding spaces"},
		{"carriage return", replace(rev, "name: hello\n", "name: hello\r\n"), "control characters"},
		{"bad utf-8", replace(rev, "version: 1.0", "version: 1.\xff"), "not valid UTF-8"},
		{"empty value", replace(rev, "arch: amd64", "arch: "), `header "arch" is empty`},
		{"upper-case name", replace(rev, "arch: amd64", "Arch: amd64"), `invalid header name "Arch"`},
		{"revision zero", replace(rev, "revision: 3", "revision: 0"), `revision "0"`},
		{"revision leading zero", replace(rev, "revision: 3", "revision: 03"), `revision "03"`},
		{"revision negative", replace(rev, "revision: 3", "revision: -3"), `revision "-3"`},
		{"size not a number", replace(rev, "size: 4096", "size: 4k"), `size "4k"`},
		{"sha256 upper case", replace(rev, "sha256: abab", "sha256: ABab"), "sha256"},
		{"package-type", replace(rev, "package-type: app", "package-type: lib"), `package-type "lib"`},
		{"timestamp zone", replace(rev, "2026-03-04T05:06:07Z", "2026-03-04T06:06:07+01:00"), "timestamp"},
		{"unexpected body", replace(rev, "Z\n\n", "Z\nbody-length: 2\n\nhi\n"), "unexpected body"},
		{"body-length zero", replace(rev, "Z\n\n", "Z\nbody-length: 0\n\n"), `invalid body-length "0"`},
		{"body-length leading zero", replace(ak, "body-length: ", "body-length: 0"), `invalid body-length`},
		{"body too short", replace(ak, "-----END PGP PUBLIC KEY BLOCK-----\n\n", "-----END PGP PUBLIC KEY BLOCK-----\n"), "body longer than body-length"},
		{"body too long", replace(ak, "-----END PGP PUBLIC KEY BLOCK-----\n\n", "-----END PGP PUBLIC KEY BLOCK-----\n\n\n"), "want a signature after the headers and body"},
		{"body-length not last", replace(ak, "names: ", "body-length: 1\nnames: "), `duplicate header "body-length"`},
		{"missing body", replace(ak, "-----END PGP PUBLIC KEY BLOCK-----\n\n", "-----END PGP PUBLIC KEY BLOCK-----\n\n"[:0]), "body"},
		{"signature header", replace(rev, "-----BEGIN PGP SIGNATURE-----\n\n", "-----BEGIN PGP SIGNATURE-----\nVersion: x\n\n"), "not in canonical form"},
		{"signature checksum", replace(rev, "\n-----END PGP SIGNATURE-----", "\n=AAAA\n-----END PGP SIGNATURE-----"), "signature"},
		{"signature unterminated", strings.TrimSuffix(rev, "-----END PGP SIGNATURE-----\n"), "signature: unexpected end"},
		{"signature not armor", rev[:sigStart] + "sig\n", "want a signature"},
		{"too big", bigAssertion(), "larger than"},
		{"long value", replace(rev, "arch: amd64", "arch: "+strings.Repeat("a", maxHeaderValue+1)), "longer than"},
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

func TestDecodeUnsignedIsErrUnsigned(t *testing.T) {
	_, err := Decode([]byte("type: app-revision\nname: hello\n"))
	if !errors.Is(err, ErrUnsigned) {
		t.Errorf("got %v, want ErrUnsigned", err)
	}
}

func TestBundle(t *testing.T) {
	root, pub := newKey(t, "root"), newKey(t, "pub")
	as := []*Assertion{signAccountKey(t, root, pub), signRevision(t, pub)}
	data := EncodeBundle(as)
	got, err := DecodeBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type() != AccountKeyType || got[1].Type() != AppRevisionType {
		t.Fatalf("got %d assertions, want account-key and app-revision", len(got))
	}
	if !bytes.Equal(EncodeBundle(got), data) {
		t.Errorf("got a different re-encoding of the bundle")
	}
	if got, err := DecodeBundle(nil); err != nil || len(got) != 0 {
		t.Errorf("got %v, %v for an empty bundle, want none", got, err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage between", append(append(as[0].Encode(), '\n'), as[1].Encode()...), "assertion 2 of bundle: no headers"},
		{"garbage after", append(data, "x"...), "assertion 3 of bundle"},
		{"too big", bytes.Repeat(data, MaxBundleSize/len(data)+1), "bundle larger than"},
		{"assertion too big", append(data, bigAssertion()...), "assertion 3 of bundle: assertion larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBundle(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// bigAssertion returns an unsigned assertion of more than MaxSize bytes
// whose every line is well-formed.
func bigAssertion() string {
	var b strings.Builder
	b.WriteString("type: thing\nauthority-id: x\nsign-key: x\n")
	for i := 0; b.Len() <= MaxSize; i++ {
		fmt.Fprintf(&b, "h%03d: %s\n", i, strings.Repeat("v", 2000))
	}
	return b.String()
}
