// Package trust decides whether a package revision may be installed, and
// whether an operator's command may be applied: it follows the chain from
// the device's trusted root keys, through account-key delegations, to the
// app-revision assertion that describes the package or to the command
// assertion.
package trust

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// Sentinel errors for the refusals callers may want to tell apart. The
// errors CheckRevision returns wrap them with a message for the user.
var (
	// ErrUnsigned: the bundle holds no signed app-revision (or command).
	ErrUnsigned = assert.ErrUnsigned
	// ErrNotTrusted: no chain leads from a trusted root to the signer.
	ErrNotTrusted = errors.New("key is not trusted")
	// ErrNotDelegated: the signer's delegation does not cover this
	// revision (role or name).
	ErrNotDelegated = errors.New("key is not delegated")
	// ErrExpired: the signer's delegation has ended, or the command has
	// expired.
	ErrExpired = errors.New("delegation expired")
	// ErrNotYetValid: the signer's delegation, or the command, has not
	// started yet.
	ErrNotYetValid = errors.New("delegation not yet valid")
	// ErrKeyChanged: another key published the installed revision and
	// the root did not allow a takeover.
	ErrKeyChanged = errors.New("publisher key changed")
	// ErrBadSignature: an assertion's signature does not verify.
	ErrBadSignature = errors.New("bad signature")
)

// refusal is a one-line message for the user that wraps a sentinel.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Revision is an app-revision that passed CheckRevision.
type Revision struct {
	Name      string
	Version   string
	Revision  int
	Arch      string
	Type      string
	Size      int64
	SHA256    string
	Timestamp time.Time
	// SignKey is the fingerprint of the key that signed the app-revision.
	SignKey string
	// Publisher is the account of the signing key: the delegation's
	// account, or the root key's name when a root signed directly.
	Publisher string
	// Grants are what the delegation grants the publisher's apps beyond
	// the default (assert.GrantRoot: they may run as root). A revision
	// that a root key signed directly holds every grant: the root is the
	// one who grants.
	Grants []string
}

// Granted reports whether the revision holds grant g, such as assert.GrantRoot.
func (r *Revision) Granted(g string) bool { return slices.Contains(r.Grants, g) }

// CheckRevision checks the app-revision in bundle (a .pdk.assert file)
// against the trusted root keys at time now. The app-revision's signing
// key must be a trusted root, or be delegated by an account-key in the
// bundle, signed by a trusted root, for the publisher role, for the
// revision's name, at time now. installedKey is the key that signed the
// installed revision, or "" for a first install; a different key is
// refused unless it is a root or its delegation allows a takeover.
//
// CheckRevision does not check the package file against the revision's
// size and digest, nor its architecture against the device's.
func CheckRevision(bundle []byte, trusted []*keys.PublicKey, now time.Time, installedKey string) (*Revision, error) {
	as, a, err := findRevision(bundle)
	if err != nil {
		return nil, err
	}
	r, err := assert.ParseAppRevision(a)
	if err != nil {
		return nil, err
	}
	signer := r.SignKey
	for _, root := range trusted {
		if root.Fingerprint() != signer {
			continue
		}
		if err := a.Verify(root); err != nil {
			return nil, refuse(ErrBadSignature, "signature of app-revision %s by root key %s is invalid (sign it again with 'paddock sign')", r.Name, keyName(root.Name(), signer))
		}
		rev := newRevision(r, keyName(root.Name(), ""))
		rev.Grants = slices.Clone(assert.AllGrants)
		return rev, nil
	}
	ak, err := findDelegation(as, trusted, signed{r.SignKey, r.AuthorityID, r.Name}, now)
	if err != nil {
		return nil, err
	}
	if err := a.Verify(ak.Key); err != nil {
		return nil, refuse(ErrBadSignature, "signature of app-revision %s by key %s is invalid (sign it again with 'paddock sign')", r.Name, keyName(ak.Account, signer))
	}
	if installedKey != "" && installedKey != signer && !ak.Takeover {
		return nil, refuse(ErrKeyChanged, "%s was published by key %s, not by key %s (the root key holder can allow this with 'paddock key delegate --takeover')",
			r.Name, keys.Short(installedKey), keyName(ak.Account, signer))
	}
	rev := newRevision(r, ak.Account)
	rev.Grants = slices.Clone(ak.Grants)
	return rev, nil
}

// findRevision decodes bundle and returns its assertions and the one
// app-revision among them.
func findRevision(bundle []byte) ([]*assert.Assertion, *assert.Assertion, error) {
	as, err := assert.DecodeBundle(bundle)
	if errors.Is(err, assert.ErrUnsigned) {
		return nil, nil, refuse(ErrUnsigned, "app-revision is not signed (run 'paddock sign')")
	}
	if err != nil {
		return nil, nil, err
	}
	var revs []*assert.Assertion
	for _, a := range as {
		if a.Type() == assert.AppRevisionType {
			revs = append(revs, a)
		}
	}
	switch len(revs) {
	case 0:
		return nil, nil, refuse(ErrUnsigned, "no signed app-revision found (run 'paddock sign')")
	case 1:
		return as, revs[0], nil
	}
	return nil, nil, fmt.Errorf("cannot check assertions: got %d app-revisions, want one (sign the package again with 'paddock sign')", len(revs))
}

func newRevision(r *assert.AppRevision, publisher string) *Revision {
	return &Revision{
		Name:      r.Name,
		Version:   r.Version,
		Revision:  r.Revision,
		Arch:      r.Arch,
		Type:      r.Type,
		Size:      r.Size,
		SHA256:    r.SHA256,
		Timestamp: r.Timestamp,
		SignKey:   r.SignKey,
		Publisher: publisher,
	}
}

// keyName names a key in messages: "pub (3F2A...)", or just one of the two.
func keyName(name, fingerprint string) string {
	switch {
	case fingerprint == "":
		return name
	case name == "":
		return keys.Short(fingerprint)
	}
	return fmt.Sprintf("%s (%s)", name, keys.Short(fingerprint))
}

// formatDate prints t as a date when it is midnight UTC, else in full.
func formatDate(t time.Time) string {
	t = t.UTC()
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

func joinNames(names []string) string { return strings.Join(names, ", ") }
