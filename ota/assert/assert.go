// Package assert encodes, decodes and signs assertions: small signed text
// documents that carry the facts paddock trusts (a root key delegating to a
// publisher or operator key, a package revision and its digest, an
// operator's command to a device).
//
// An assertion has one canonical text form, so the bytes that are signed
// are the bytes that are stored and compared:
//
//	type: app-revision
//	authority-id: pub
//	sign-key: 3F2A...
//	name: hello
//	...
//	body-length: 12           (only when there is a body)
//	                          (an empty line ends the headers)
//	BODY (body-length bytes)  (only when there is a body)
//	                          (a newline follows the body)
//	-----BEGIN PGP SIGNATURE-----
//	...
//	-----END PGP SIGNATURE-----
//
// The OpenPGP detached signature covers every byte before the BEGIN line.
// Headers are single "name: value" lines in a fixed order: type,
// authority-id, sign-key, then the headers of the type in the order its
// schema lists them (sorted by name for types this package does not know),
// then body-length. Decode accepts nothing but this form.
package assert

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"paddock.dev/paddock/ota/keys"
)

const (
	// MaxSize bounds the encoded size of one assertion.
	MaxSize = 64 << 10
	// MaxBundleSize bounds the size of a bundle of assertions.
	MaxBundleSize = 1 << 20
	// maxSignatureSize bounds the raw OpenPGP signature packet.
	maxSignatureSize = 4 << 10
)

// ErrUnsigned is returned when an assertion has no signature.
var ErrUnsigned = errors.New("assertion is not signed")

// Header is one "name: value" line of an assertion.
type Header struct {
	Name  string
	Value string
}

// Assertion is a decoded or freshly signed assertion. It is immutable.
type Assertion struct {
	headers []Header
	body    []byte
	signed  []byte // the bytes the signature covers
	sig     []byte // the raw OpenPGP signature packet
	encoded []byte
}

// Type returns the assertion's type, such as "app-revision".
func (a *Assertion) Type() string { return a.headers[0].Value }

// Header returns the value of the header called name, or "".
func (a *Assertion) Header(name string) string {
	for _, h := range a.headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// Headers returns all headers in their canonical order, including type,
// authority-id, sign-key and body-length.
func (a *Assertion) Headers() []Header { return slices.Clone(a.headers) }

// Body returns the assertion's body, or nil if it has none.
func (a *Assertion) Body() []byte { return bytes.Clone(a.body) }

// AuthorityID returns the name of the signer as it stated it.
func (a *Assertion) AuthorityID() string { return a.Header("authority-id") }

// SignKey returns the fingerprint of the key that signed the assertion.
func (a *Assertion) SignKey() string { return a.Header("sign-key") }

// Encode returns the assertion's canonical text form.
func (a *Assertion) Encode() []byte { return bytes.Clone(a.encoded) }

// Verify checks that pub is the assertion's sign-key and that the signature
// is pub's signature over the assertion.
func (a *Assertion) Verify(pub *keys.PublicKey) error {
	if pub.Fingerprint() != a.SignKey() {
		return fmt.Errorf("cannot verify %s: signed by key %s, not %s", a.Type(), a.SignKey(), pub.Fingerprint())
	}
	if err := pub.Verify(a.signed, a.sig); err != nil {
		return fmt.Errorf("cannot verify %s: %w", a.Type(), err)
	}
	return nil
}

// Sign makes an assertion of type typ with the given headers and body,
// signed by key. The headers may come in any order and must not include
// type, authority-id, sign-key or body-length, which Sign sets. For a type
// this package knows, the headers and body are checked against its schema.
func Sign(typ string, headers []Header, body []byte, key *keys.PrivateKey) (*Assertion, error) {
	pub := key.Public()
	authority := pub.Name()
	if authority == "" {
		authority = pub.Fingerprint()
	}
	all := []Header{{"type", typ}, {"authority-id", authority}, {"sign-key", pub.Fingerprint()}}
	for _, h := range headers {
		if isReserved(h.Name) {
			return nil, fmt.Errorf("cannot sign %s: header %q is set by the signer", typ, h.Name)
		}
	}
	all = append(all, sortHeaders(typ, headers)...)
	if len(body) > 0 {
		all = append(all, Header{"body-length", fmt.Sprint(len(body))})
	}
	content := encodeContent(all, body)
	sig, err := key.Sign(content)
	if err != nil {
		return nil, fmt.Errorf("cannot sign %s: %w", typ, err)
	}
	encoded := append(content, armorSignature(sig)...)
	// Decode what we made: the signer must never produce an assertion the
	// decoder refuses.
	a, err := Decode(encoded)
	if err != nil {
		return nil, fmt.Errorf("cannot sign %s: %w", typ, err)
	}
	return a, nil
}

// encodeContent returns the signed part of an assertion.
func encodeContent(headers []Header, body []byte) []byte {
	var buf bytes.Buffer
	for _, h := range headers {
		buf.WriteString(h.Name)
		buf.WriteString(": ")
		buf.WriteString(h.Value)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
	if len(body) > 0 {
		buf.Write(body)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// EncodeBundle concatenates the assertions, as stored in a .pdk.assert file.
func EncodeBundle(as []*Assertion) []byte {
	var buf bytes.Buffer
	for _, a := range as {
		buf.Write(a.encoded)
	}
	return buf.Bytes()
}
