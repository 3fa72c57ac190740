package trust

import (
	"errors"
	"fmt"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// Sentinel errors of CheckBase.
var (
	// ErrOlderBase: the base-revision is lower than the running base's.
	ErrOlderBase = errors.New("older base revision")
	// ErrWrongArch: the base is for another architecture.
	ErrWrongArch = errors.New("wrong architecture")
)

// Base is a base-revision that passed CheckBase.
type Base struct {
	*assert.BaseRevision
	// Publisher is the account of the signing key: the delegation's
	// account, or the root key's name when a root signed directly.
	Publisher string
	// Assertion is the base-revision itself, to keep next to the slot.
	Assertion *assert.Assertion
}

// Running describes the base a device runs, for CheckBase; the zero value
// (a device that does not know its base's revision) checks neither.
type Running struct {
	Revision int
	// SignKey is the key that signed the running base's revision.
	SignKey string
}

// CheckBase checks the base-revision in bundle (a .assert file of 'paddock
// image base') against the trusted root keys at time now: its signing key
// must be a trusted root, or be delegated by an account-key in the bundle,
// signed by a trusted root, as publisher of the base's name. A base for
// another architecture than arch, or with a lower revision than the
// running one, is refused; so is a base signed by another key than the
// running one's, unless its delegation allows a takeover.
//
// CheckBase does not check the image against the revision's size and
// digests.
func CheckBase(bundle []byte, trusted []*keys.PublicKey, now time.Time, arch string, running Running) (*Base, error) {
	as, err := assert.DecodeBundle(bundle)
	if errors.Is(err, assert.ErrUnsigned) {
		return nil, refuse(ErrUnsigned, "base-revision is not signed (sign it with 'paddock image base --key')")
	}
	if err != nil {
		return nil, err
	}
	var revs []*assert.Assertion
	for _, a := range as {
		if a.Type() == assert.BaseRevisionType {
			revs = append(revs, a)
		}
	}
	if len(revs) != 1 {
		return nil, refuse(ErrUnsigned, "got %d base-revisions, want one (give the .assert file that 'paddock image base --key' wrote)", len(revs))
	}
	a := revs[0]
	r, err := assert.ParseBaseRevision(a)
	if err != nil {
		return nil, err
	}
	b, err := checkBaseSigner(as, a, r, trusted, now, running)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Arch != arch:
		return nil, refuse(ErrWrongArch, "base %s revision %d is for %s, this device is %s (build the base with 'paddock image base --arch %s')",
			r.Name, r.Revision, r.Arch, arch, arch)
	case r.Revision < running.Revision:
		return nil, refuse(ErrOlderBase, "base %s revision %d is lower than the running revision %d (sign the base with a higher --revision)",
			r.Name, r.Revision, running.Revision)
	}
	return b, nil
}

// checkBaseSigner follows the chain from the trusted roots to the signer
// of the base-revision a.
func checkBaseSigner(as []*assert.Assertion, a *assert.Assertion, r *assert.BaseRevision, trusted []*keys.PublicKey, now time.Time, running Running) (*Base, error) {
	for _, root := range trusted {
		if root.Fingerprint() != r.SignKey {
			continue
		}
		if err := a.Verify(root); err != nil {
			return nil, refuse(ErrBadSignature, "signature of base-revision %s by root key %s is invalid (sign it again)", r.Name, keyName(root.Name(), r.SignKey))
		}
		return &Base{BaseRevision: r, Publisher: keyName(root.Name(), ""), Assertion: a}, nil
	}
	ak, err := findDelegation(as, trusted, signed{r.SignKey, r.AuthorityID, r.Name}, now)
	if err != nil {
		return nil, err
	}
	if err := a.Verify(ak.Key); err != nil {
		return nil, refuse(ErrBadSignature, "signature of base-revision %s by key %s is invalid (sign it again)", r.Name, keyName(ak.Account, r.SignKey))
	}
	if running.SignKey != "" && running.SignKey != r.SignKey && !ak.Takeover {
		return nil, refuse(ErrKeyChanged, "the running base was published by key %s, not by key %s (the root key holder can allow this with 'paddock key delegate --takeover')",
			keys.Short(running.SignKey), keyName(ak.Account, r.SignKey))
	}
	return &Base{BaseRevision: r, Publisher: ak.Account, Assertion: a}, nil
}

// String names the base in messages: "paddock-base 2 (revision 2)".
func (b *Base) String() string {
	return fmt.Sprintf("%s %s (revision %d)", b.Name, b.Version, b.Revision)
}
