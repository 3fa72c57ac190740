package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
)

func TestStoreCreateListExport(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "keys")}
	k, err := s.Create("root")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(k.Public().Fingerprint()), 64; got != want {
		t.Errorf("got fingerprint length %d, want %d", got, want)
	}
	if got, want := k.Public().Name(), "root"; got != want {
		t.Errorf("got name %q, want %q", got, want)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("got key file mode %v, want %v", got, want)
	}
	di, err := os.Stat(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := di.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Errorf("got key dir mode %v, want %v", got, want)
	}
	if _, err := s.Create("root"); !errors.Is(err, ErrExists) {
		t.Errorf("got error %v creating a key twice, want ErrExists", err)
	}
	if _, err := s.Create("pub"); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "pub" || infos[1].Name != "root" || infos[1].Fingerprint != k.Public().Fingerprint() {
		t.Errorf("got list %+v, want pub and root (%s)", infos, k.Public().Fingerprint())
	}
	armored, err := s.ExportPublic("root")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(armored)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pub.Fingerprint(), k.Public().Fingerprint(); got != want {
		t.Errorf("got exported fingerprint %s, want %s", got, want)
	}
	loaded, err := s.Private("root")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := loaded.Sign([]byte("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verify([]byte("hello\n"), sig); err != nil {
		t.Errorf("got %v verifying a good signature, want nil", err)
	}
	if err := pub.Verify([]byte("hellO\n"), sig); err == nil {
		t.Errorf("got nil verifying a signature over other data, want an error")
	}
}

func TestStoreErrors(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	_, err := s.Private("missing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
	if got, want := err.Error(), "key missing not found (create it with 'paddock key create missing')"; got != want {
		t.Errorf("got error %q, want %q", got, want)
	}
	for _, name := range []string{"", "Root", "-a", "a_b", "a/b", "../x", strings.Repeat("a", 65)} {
		if _, err := s.Create(name); err == nil {
			t.Errorf("Create(%q): got nil error, want invalid name", name)
		}
	}
	if infos, err := (&Store{Dir: filepath.Join(s.Dir, "none")}).List(); err != nil || len(infos) != 0 {
		t.Errorf("got %v, %v listing a missing store, want no keys", infos, err)
	}
}

func TestDefaultStore(t *testing.T) {
	t.Setenv("PADDOCK_KEYS", "/some/keys")
	s, err := DefaultStore()
	if err != nil || s.Dir != "/some/keys" {
		t.Errorf("got %v, %v, want /some/keys", s, err)
	}
	t.Setenv("PADDOCK_KEYS", "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	s, err = DefaultStore()
	if err != nil || s.Dir != "/cfg/paddock/keys" {
		t.Errorf("got %v, %v, want /cfg/paddock/keys", s, err)
	}
}

func armorEntities(t *testing.T, blockType string, private bool, es ...*openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if private {
			err = e.SerializePrivate(w, nil)
		} else {
			err = e.Serialize(w)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return buf.Bytes()
}

func TestParsePublicKeyRejects(t *testing.T) {
	a, err := Generate("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate("b")
	if err != nil {
		t.Fatal(err)
	}
	ecdsa, err := openpgp.NewEntity("e", "", "", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := Generate("r")
	if err != nil {
		t.Fatal(err)
	}
	if err := revoked.entity.Revoke(packet.KeyCompromised, "lost", nil); err != nil {
		t.Fatal(err)
	}
	priv, err := a.armoredPrivate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "cannot parse key"},
		{"garbage", []byte("hello"), "cannot parse key"},
		{"private", priv, `got "PGP PRIVATE KEY BLOCK" block`},
		{"private in public block", armorEntities(t, publicBlock, true, a.entity), "holds a private key"},
		{"two keys", armorEntities(t, publicBlock, false, a.public.entity, b.public.entity), "got 2 keys"},
		{"not ed25519", armorEntities(t, publicBlock, false, ecdsa), "is not Ed25519"},
		{"revoked", armorEntities(t, publicBlock, false, revoked.entity), "revoked"},
		{"too big", bytes.Repeat([]byte("a"), maxKeySize+1), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePublicKey(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTrust(t *testing.T) {
	dirstest.SetRoot(t)
	got, err := LoadTrusted()
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v with no trusted dir, want no keys", got, err)
	}
	k, err := Generate("root")
	if err != nil {
		t.Fatal(err)
	}
	armored, err := k.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := Trust(armored); err != nil {
			t.Fatal(err)
		}
	}
	fp := k.Public().Fingerprint()
	if _, err := os.Stat(filepath.Join(dirs.TrustedDir, fp+".asc")); err != nil {
		t.Errorf("got %v, want the trusted key file", err)
	}
	got, err = LoadTrusted()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Fingerprint() != fp || got[0].Name() != "root" {
		t.Errorf("got %d trusted keys, want root %s", len(got), fp)
	}
	if _, err := Trust([]byte("junk")); err == nil {
		t.Errorf("got nil trusting junk, want an error")
	}
	os.WriteFile(filepath.Join(dirs.TrustedDir, "bad.asc"), []byte("junk"), 0o644)
	if _, err := LoadTrusted(); err == nil || !strings.Contains(err.Error(), "bad.asc") {
		t.Errorf("got %v, want an error naming bad.asc", err)
	}
}

func TestShort(t *testing.T) {
	if got, want := Short("3f2a0000111122223333"), "3F2A000011112222"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestVerifyToleratesLaggingClock pins the refused fleet commands of
// TestApplianceHardwareInQEMU: a guest whose clock lagged the host's by
// under a second refused a command signed within that second ("signature
// ... is invalid"): OpenPGP counted a signature made after its "now" as
// expired. A signature from up to ClockSkew ahead verifies; one from
// further ahead does not.
func TestVerifyToleratesLaggingClock(t *testing.T) {
	k, err := Generate("ops")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("command")
	for _, tt := range []struct {
		ahead time.Duration
		ok    bool
	}{{2 * time.Second, true}, {ClockSkew - time.Minute, true}, {ClockSkew + time.Minute, false}} {
		var sig bytes.Buffer
		at := time.Now().Add(tt.ahead)
		if err := openpgp.DetachSign(&sig, []*openpgp.Entity{k.entity}, bytes.NewReader(data), &packet.Config{Time: func() time.Time { return at }}); err != nil {
			t.Fatal(err)
		}
		err := k.Public().Verify(data, sig.Bytes())
		if got := err == nil; got != tt.ok {
			t.Errorf("signature made %v ahead: verified %v (%v), want %v", tt.ahead, got, err, tt.ok)
		}
	}
}
