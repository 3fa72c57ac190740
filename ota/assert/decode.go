package assert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const (
	sigBegin       = "-----BEGIN PGP SIGNATURE-----\n"
	sigEnd         = "-----END PGP SIGNATURE-----\n"
	maxHeaderValue = 4 << 10
	maxHeaders     = 64
)

var (
	validHeaderName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`) })
	validType       = validHeaderName
)

// Decode decodes exactly one assertion in canonical form. It checks the
// form and, for known types, the headers and body; it does not check the
// signature (see Assertion.Verify).
func Decode(data []byte) (*Assertion, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("cannot decode assertion: larger than %d bytes", MaxSize)
	}
	a, n, err := decodeOne(data)
	if err != nil {
		return nil, fmt.Errorf("cannot decode assertion: %w", err)
	}
	if n != len(data) {
		return nil, fmt.Errorf("cannot decode %s assertion: unexpected data after the signature", a.Type())
	}
	return a, nil
}

// DecodeBundle decodes several concatenated assertions, as found in a
// .pdk.assert file. An empty bundle holds no assertions.
func DecodeBundle(data []byte) ([]*Assertion, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("cannot decode assertions: bundle larger than %d bytes", MaxBundleSize)
	}
	var as []*Assertion
	for len(data) > 0 {
		a, n, err := decodeOne(data)
		if err != nil {
			return nil, fmt.Errorf("cannot decode assertion %d of bundle: %w", len(as)+1, err)
		}
		as = append(as, a)
		data = data[n:]
	}
	return as, nil
}

// decodeOne decodes the assertion at the start of data and returns it with
// the number of bytes it takes.
func decodeOne(data []byte) (*Assertion, int, error) {
	if len(data) == 0 {
		return nil, 0, errors.New("empty input")
	}
	// The assertions that follow in a bundle may push data past the cap;
	// only the first MaxSize bytes can belong to this one.
	var truncated bool
	if len(data) > MaxSize {
		data, truncated = data[:MaxSize], true
	}
	a, end, err := decodeAt(data)
	if errors.Is(err, errShort) && truncated {
		return nil, 0, fmt.Errorf("assertion larger than %d bytes", MaxSize)
	}
	return a, end, err
}

// errShort marks decoding errors caused by data ending too early.
var errShort = errors.New("unexpected end of input")

func decodeAt(data []byte) (*Assertion, int, error) {
	headers, pos, err := decodeHeaders(data)
	if err != nil {
		return nil, 0, err
	}
	if err := checkOrder(headers); err != nil {
		return nil, 0, err
	}
	body, pos, err := decodeBody(data, headers, pos)
	if err != nil {
		return nil, 0, err
	}
	sig, end, err := decodeSignature(data, pos)
	if err != nil {
		return nil, 0, err
	}
	a := &Assertion{
		headers: headers,
		body:    body,
		signed:  bytes.Clone(data[:pos]),
		sig:     sig,
		encoded: bytes.Clone(data[:end]),
	}
	if s, ok := schemas[a.Type()]; ok {
		if err := s.check(a); err != nil {
			return nil, 0, err
		}
	}
	return a, end, nil
}

// decodeHeaders reads the header lines up to the empty line that ends them
// and returns the position after it.
func decodeHeaders(data []byte) ([]Header, int, error) {
	var headers []Header
	seen := make(map[string]bool)
	pos := 0
	for {
		if pos == len(data) {
			if len(headers) > 0 {
				// Headers with nothing after them: somebody wrote an
				// assertion by hand and never signed it.
				return nil, 0, ErrUnsigned
			}
			return nil, 0, errors.New("empty input")
		}
		if data[pos] == '\n' {
			if len(headers) == 0 {
				return nil, 0, errors.New("no headers")
			}
			return headers, pos + 1, nil
		}
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			return nil, 0, fmt.Errorf("header line %d: %w", len(headers)+1, errShort)
		}
		h, err := parseHeaderLine(data[pos : pos+nl])
		if err != nil {
			return nil, 0, fmt.Errorf("header line %d: %w", len(headers)+1, err)
		}
		if seen[h.Name] {
			return nil, 0, fmt.Errorf("duplicate header %q", h.Name)
		}
		seen[h.Name] = true
		if headers = append(headers, h); len(headers) > maxHeaders {
			return nil, 0, fmt.Errorf("more than %d headers", maxHeaders)
		}
		pos += nl + 1
	}
}

func parseHeaderLine(line []byte) (Header, error) {
	name, value, ok := bytes.Cut(line, []byte(": "))
	if !ok {
		return Header{}, errors.New(`want "name: value"`)
	}
	h := Header{Name: string(name), Value: string(value)}
	if err := checkHeader(h); err != nil {
		return Header{}, err
	}
	return h, nil
}

// checkHeader checks the form of one header, whatever its meaning.
func checkHeader(h Header) error {
	if len(h.Name) > 64 || !validHeaderName().MatchString(h.Name) {
		return fmt.Errorf("invalid header name %q", h.Name)
	}
	v := h.Value
	switch {
	case v == "":
		return fmt.Errorf("header %q is empty (omit it instead)", h.Name)
	case len(v) > maxHeaderValue:
		return fmt.Errorf("header %q is longer than %d bytes", h.Name, maxHeaderValue)
	case !utf8.ValidString(v):
		return fmt.Errorf("header %q is not valid UTF-8", h.Name)
	case v[0] == ' ' || v[len(v)-1] == ' ':
		return fmt.Errorf("header %q has surrounding spaces", h.Name)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("header %q holds control characters", h.Name)
		}
	}
	return nil
}

// checkOrder checks that the headers are those of the type, in canonical order.
func checkOrder(headers []Header) error {
	for i, name := range []string{"type", "authority-id", "sign-key"} {
		if i >= len(headers) || headers[i].Name != name {
			return fmt.Errorf("header %d must be %q", i+1, name)
		}
	}
	typ := headers[0].Value
	if !validType().MatchString(typ) {
		return fmt.Errorf("invalid type %q", typ)
	}
	rest := headers[3:]
	if n := len(rest); n > 0 && rest[n-1].Name == "body-length" {
		rest = rest[:n-1]
	}
	for _, h := range rest {
		if isReserved(h.Name) {
			return fmt.Errorf("header %q out of place", h.Name)
		}
	}
	if s, ok := schemas[typ]; ok {
		if err := s.checkHeaders(rest); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
	}
	sorted := sortHeaders(typ, rest)
	for i := range rest {
		if rest[i].Name != sorted[i].Name {
			return fmt.Errorf("%s: header %q out of canonical order", typ, rest[i].Name)
		}
	}
	return nil
}

// decodeBody reads the body that body-length announces, if any.
func decodeBody(data []byte, headers []Header, pos int) ([]byte, int, error) {
	last := headers[len(headers)-1]
	if last.Name != "body-length" {
		return nil, pos, nil
	}
	n, err := strconv.Atoi(last.Value)
	if err != nil || n <= 0 || strconv.Itoa(n) != last.Value {
		return nil, 0, fmt.Errorf("invalid body-length %q", last.Value)
	}
	if n > len(data)-pos-1 {
		return nil, 0, fmt.Errorf("body shorter than body-length %d: %w", n, errShort)
	}
	body := data[pos : pos+n]
	if data[pos+n] != '\n' {
		return nil, 0, fmt.Errorf("body longer than body-length %d", n)
	}
	if !utf8.Valid(body) {
		return nil, 0, errors.New("body is not valid UTF-8")
	}
	return bytes.Clone(body), pos + n + 1, nil
}

// decodeSignature reads the armored signature at pos, which must be in the
// exact form armorSignature writes, and returns the raw signature packet
// and the position after it.
func decodeSignature(data []byte, pos int) ([]byte, int, error) {
	rest := data[pos:]
	if len(rest) == 0 {
		return nil, 0, ErrUnsigned
	}
	if !bytes.HasPrefix(rest, []byte(sigBegin)) {
		return nil, 0, errors.New("want a signature after the headers and body")
	}
	i := bytes.Index(rest, []byte("\n"+sigEnd))
	if i < 0 {
		return nil, 0, fmt.Errorf("signature: %w", errShort)
	}
	block := rest[:i+1+len(sigEnd)]
	if len(block) > 2*maxSignatureSize {
		return nil, 0, errors.New("signature too long")
	}
	b, err := armor.Decode(bytes.NewReader(block))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot decode signature: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(b.Body, maxSignatureSize))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot decode signature: %w", err)
	}
	if !bytes.Equal(armorSignature(raw), block) {
		return nil, 0, errors.New("signature is not in canonical form")
	}
	if err := checkSignaturePacket(raw); err != nil {
		return nil, 0, err
	}
	return raw, pos + len(block), nil
}

// checkSignaturePacket checks that raw is one OpenPGP signature packet.
func checkSignaturePacket(raw []byte) error {
	r := bytes.NewReader(raw)
	p, err := packet.Read(r)
	if err != nil {
		return fmt.Errorf("cannot parse signature: %w", err)
	}
	if _, ok := p.(*packet.Signature); !ok {
		return fmt.Errorf("cannot parse signature: got %T, want a signature packet", p)
	}
	if r.Len() != 0 {
		return errors.New("cannot parse signature: want exactly one signature packet")
	}
	return nil
}

// armorSignature returns the canonical armored form of a raw signature.
func armorSignature(raw []byte) []byte {
	var buf bytes.Buffer
	w, err := armor.EncodeWithChecksumOption(&buf, "PGP SIGNATURE", nil, false)
	if err != nil {
		panic("internal error: cannot armor: " + err.Error())
	}
	w.Write(raw)
	w.Close()
	buf.WriteByte('\n')
	return buf.Bytes()
}

func isReserved(name string) bool {
	switch name {
	case "type", "authority-id", "sign-key", "body-length":
		return true
	}
	return false
}
