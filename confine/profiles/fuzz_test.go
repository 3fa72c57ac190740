package profiles

import (
	"bytes"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// FuzzParsePolicy checks that a policy file, whatever it holds, is either
// refused or a policy the sandbox can enforce as meant, which encodes back
// to a file that reads the same. Seeds are in testdata/.
func FuzzParsePolicy(f *testing.F) {
	testutil.AddSeeds(f, "testdata/*.policy")
	good, _ := testPolicy("hello", 2, "hello").Encode()
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePolicy(data, "hello", 2, "hello")
		if err != nil {
			if p != nil || strings.Contains(err.Error(), string(data)) && len(data) > 8 {
				t.Fatalf("got a policy with the error %v, or the error quotes the file", err)
			}
			return
		}
		if !p.Root && (p.UID <= 0 || p.GID <= 0) {
			t.Fatalf("accepted uid %d gid %d without root", p.UID, p.GID)
		}
		again, err := p.Encode()
		if err != nil {
			t.Fatalf("an accepted policy does not encode: %v", err)
		}
		q, err := parsePolicy(again, "hello", 2, "hello")
		if err != nil {
			t.Fatalf("an encoded policy does not read back: %v", err)
		}
		if third, _ := q.Encode(); !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}
