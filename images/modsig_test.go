package images

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// signed appends a signature record of sigLen bytes to body, as the
// kernel's sign-file does.
func signed(body []byte, sigLen int, idType byte) []byte {
	out := append([]byte{}, body...)
	out = append(out, bytes.Repeat([]byte{0x30}, sigLen)...)
	info := make([]byte, moduleSigInfoLen)
	info[2] = idType
	binary.BigEndian.PutUint32(info[8:], uint32(sigLen))
	out = append(out, info...)
	return append(out, moduleSigMagic...)
}

func TestStripModuleSignature(t *testing.T) {
	body := []byte("\x7fELF module body")
	for _, tc := range []struct {
		name   string
		in     []byte
		want   []byte
		strips bool
	}{
		{"signed", signed(body, 670, 2), body, true},
		{"empty signature", signed(body, 0, 2), body, true},
		{"unsigned", body, body, false},
		{"not PKCS#7", signed(body, 10, 1), nil, false},
		{"length beyond the file", signed(body, 10, 2)[10+len(body):], nil, false},
		{"magic only", []byte(moduleSigMagic), nil, false},
	} {
		got, ok := stripModuleSignature(tc.in)
		want := tc.want
		if want == nil {
			want = tc.in // left as it is
		}
		if ok != tc.strips || !bytes.Equal(got, want) {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, ok, want, tc.strips)
		}
	}
}

func FuzzStripModuleSignature(f *testing.F) {
	f.Add(signed([]byte("body"), 4, 2))
	f.Add([]byte(moduleSigMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok := stripModuleSignature(data)
		if !ok && !bytes.Equal(out, data) {
			t.Fatal("changed a module it did not strip")
		}
		if ok && (len(out) >= len(data) || !bytes.HasPrefix(data, out)) {
			t.Fatal("stripped something other than a tail")
		}
	})
}
