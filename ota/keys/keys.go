// Package keys creates, stores and parses the Ed25519 OpenPGP keys that sign
// paddock assertions, and keeps the device's set of trusted root keys.
//
// A developer's private keys live in a Store (one armored file per key name);
// the public half of a root key is trusted on a device by copying it into
// dirs.TrustedDir with Trust.
package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

const (
	publicBlock  = "PGP PUBLIC KEY BLOCK"
	privateBlock = "PGP PRIVATE KEY BLOCK"
	// maxKeySize bounds an armored key read from a file or an assertion body.
	maxKeySize = 16 << 10
)

// validName is the form of a key name: lowercase letters, digits and dashes.
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`) })

// ValidateName reports whether name can name a key.
func ValidateName(name string) error {
	if len(name) > 64 || !validName().MatchString(name) {
		return fmt.Errorf("invalid key name %q (use lowercase letters, digits and dashes, starting with a letter or digit)", name)
	}
	return nil
}

// PublicKey is the public half of an Ed25519 OpenPGP key.
type PublicKey struct {
	entity *openpgp.Entity
}

// Fingerprint returns the key's fingerprint in uppercase hex.
func (k *PublicKey) Fingerprint() string {
	return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint)
}

// Name returns the name in the key's user ID, or "" if it has none.
func (k *PublicKey) Name() string {
	names := make([]string, 0, len(k.entity.Identities))
	for _, id := range k.entity.Identities {
		if id.UserId != nil {
			names = append(names, id.UserId.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	// Map order is random; our keys have one identity, others get a stable pick.
	min := names[0]
	for _, n := range names[1:] {
		if n < min {
			min = n
		}
	}
	return min
}

// Armored returns the key as an armored OpenPGP public key block.
func (k *PublicKey) Armored() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.EncodeWithChecksumOption(&buf, publicBlock, nil, false)
	if err != nil {
		return nil, fmt.Errorf("cannot encode key %s: %w", k.Fingerprint(), err)
	}
	if err := k.entity.Serialize(w); err != nil {
		return nil, fmt.Errorf("cannot encode key %s: %w", k.Fingerprint(), err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cannot encode key %s: %w", k.Fingerprint(), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ClockSkew is how far ahead of this machine's clock a signature may have
// been made. OpenPGP counts a signature made after "now" as expired, and a
// device's clock lags the operator's (a clock set from an RTC or QEMU's
// whole seconds lags by up to one): a command signed and sent within that
// second was refused as "invalid". What a signature vouches for has its
// own validity window (a delegation's, a command's expiry), checked against
// the real clock elsewhere.
const ClockSkew = 5 * time.Minute

// verifyConfig is the OpenPGP configuration of Verify.
var verifyConfig = &packet.Config{Time: func() time.Time { return time.Now().Add(ClockSkew) }}

// Verify checks that sig is a valid binary-mode Ed25519 signature made by
// the primary key k over signed, at most ClockSkew after now.
func (k *PublicKey) Verify(signed, sig []byte) error {
	// Only the primary key may sign: a subkey of another algorithm in a
	// foreign key must not widen what we accept.
	primary := *k.entity
	primary.Subkeys = nil
	s, _, err := openpgp.VerifyDetachedSignature(openpgp.EntityList{&primary},
		bytes.NewReader(signed), bytes.NewReader(sig), verifyConfig)
	if err != nil {
		return fmt.Errorf("bad signature by key %s: %w", k.Fingerprint(), err)
	}
	if s.SigType != packet.SigTypeBinary || s.PubKeyAlgo != packet.PubKeyAlgoEd25519 {
		return fmt.Errorf("bad signature by key %s: not a binary Ed25519 signature", k.Fingerprint())
	}
	return nil
}

// ParsePublicKey parses an armored OpenPGP public key block holding exactly
// one Ed25519 key.
func ParsePublicKey(armored []byte) (*PublicKey, error) {
	e, err := readOne(armored, publicBlock)
	if err != nil {
		return nil, err
	}
	if e.PrivateKey != nil {
		return nil, errors.New("cannot parse public key: block holds a private key")
	}
	return &PublicKey{entity: e}, nil
}

// PrivateKey is an Ed25519 OpenPGP key that can sign.
type PrivateKey struct {
	entity *openpgp.Entity
	public *PublicKey
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// Sign returns a binary detached OpenPGP signature by k over data.
func (k *PrivateKey) Sign(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, []*openpgp.Entity{k.entity}, bytes.NewReader(data), nil); err != nil {
		return nil, fmt.Errorf("cannot sign with key %s: %w", k.public.Fingerprint(), err)
	}
	return buf.Bytes(), nil
}

// armoredPrivate returns k as an unencrypted armored private key block.
func (k *PrivateKey) armoredPrivate() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.EncodeWithChecksumOption(&buf, privateBlock, nil, false)
	if err != nil {
		return nil, err
	}
	if err := k.entity.SerializePrivate(w, nil); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Generate makes a new signing-only Ed25519 v6 key with user ID name,
// without saving it anywhere (see Store.Create).
func Generate(name string) (*PrivateKey, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("cannot create key: %w", err)
	}
	cfg := &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519}
	e, err := openpgp.NewEntity(name, "", "", cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create key %s: %w", name, err)
	}
	// The key only signs assertions; drop the encryption subkey so the
	// primary key is the only one that can ever appear in a signature.
	e.Subkeys = nil
	return newPrivate(e), nil
}

func newPrivate(e *openpgp.Entity) *PrivateKey {
	pub := *e
	pub.PrivateKey = nil
	return &PrivateKey{entity: e, public: &PublicKey{entity: &pub}}
}

// parsePrivate parses an armored private key block holding one Ed25519 key.
func parsePrivate(armored []byte) (*PrivateKey, error) {
	e, err := readOne(armored, privateBlock)
	if err != nil {
		return nil, err
	}
	if e.PrivateKey == nil {
		return nil, errors.New("cannot parse private key: block holds no private key")
	}
	if e.PrivateKey.Encrypted {
		return nil, errors.New("cannot parse private key: key is encrypted with a passphrase")
	}
	return newPrivate(e), nil
}

// readOne reads an armored block of type blockType holding exactly one
// Ed25519 key.
func readOne(armored []byte, blockType string) (*openpgp.Entity, error) {
	if len(armored) > maxKeySize {
		return nil, fmt.Errorf("cannot parse key: larger than %d bytes", maxKeySize)
	}
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("cannot parse key: %w", err)
	}
	if block.Type != blockType {
		return nil, fmt.Errorf("cannot parse key: got %q block, want %q", block.Type, blockType)
	}
	raw, err := io.ReadAll(io.LimitReader(block.Body, maxKeySize))
	if err != nil {
		return nil, fmt.Errorf("cannot parse key: %w", err)
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("cannot parse key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("cannot parse key: got %d keys, want exactly one", len(el))
	}
	e := el[0]
	if algo := e.PrimaryKey.PubKeyAlgo; algo != packet.PubKeyAlgoEd25519 {
		return nil, fmt.Errorf("cannot parse key %X: algorithm %d is not Ed25519", e.PrimaryKey.Fingerprint, algo)
	}
	// A key whose self-signature fails, or that is revoked or expired,
	// cannot sign anything we accept.
	if _, err := e.VerifyPrimaryKey(time.Now(), nil); err != nil {
		return nil, fmt.Errorf("cannot use key %X: %w", e.PrimaryKey.Fingerprint, err)
	}
	return e, nil
}

// Short returns a key's fingerprint cut to 16 hex digits, for messages
// where the full fingerprint would drown the point.
func Short(fingerprint string) string {
	fp := strings.ToUpper(fingerprint)
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
