package assert

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzSeeds returns freshly signed assertions of each kind to start from.
func fuzzSeeds(f *testing.F) [][]byte {
	root, pub, ops := newKey(f, "root"), newKey(f, "pub"), newKey(f, "ops")
	return [][]byte{
		signAccountKey(f, root, pub).Encode(),
		signRevision(f, pub).Encode(),
		signOperatorKey(f, root, ops).Encode(),
		signCommand(f, ops, nil).Encode(),
		signCommand(f, ops, func(c *Command) {
			c.Target, c.Action, c.Body = "group/lab", "config-set", []byte(`{"key":"a","value":"b"}`)
		}).Encode(),
		signBaseRevision(f, pub, nil).Encode(),
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// is canonical: encoding it again gives back exactly the input.
func FuzzDecode(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(EncodeBundle(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err != nil {
			return
		}
		enc := a.Encode()
		if !bytes.Equal(enc, data) {
			t.Fatalf("got re-encoding\n%q\nwant the input\n%q", enc, data)
		}
		b, err := Decode(enc)
		if err != nil {
			t.Fatalf("got %v decoding an encoding, want nil", err)
		}
		if !reflect.DeepEqual(a.Headers(), b.Headers()) || !bytes.Equal(a.Body(), b.Body()) {
			t.Fatalf("got a different assertion after a round trip")
		}
		switch a.Type() {
		case AccountKeyType:
			if _, err := ParseAccountKey(a); err != nil {
				t.Fatalf("got %v parsing a decoded account-key, want nil", err)
			}
		case AppRevisionType:
			if _, err := ParseAppRevision(a); err != nil {
				t.Fatalf("got %v parsing a decoded app-revision, want nil", err)
			}
		case CommandType:
			if _, err := ParseCommand(a); err != nil {
				t.Fatalf("got %v parsing a decoded command, want nil", err)
			}
		case BaseRevisionType:
			if _, err := ParseBaseRevision(a); err != nil {
				t.Fatalf("got %v parsing a decoded base-revision, want nil", err)
			}
		}
	})
}

// FuzzDecodeBundle checks that DecodeBundle never panics and that a bundle
// it accepts encodes back to exactly the input.
func FuzzDecodeBundle(f *testing.F) {
	seeds := fuzzSeeds(f)
	f.Add(bytes.Join(seeds, nil))
	f.Add(seeds[0])
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := DecodeBundle(data)
		if err != nil {
			return
		}
		if enc := EncodeBundle(as); !bytes.Equal(enc, data) {
			t.Fatalf("got re-encoding\n%q\nwant the input\n%q", enc, data)
		}
		for _, a := range as {
			if _, err := Decode(a.Encode()); err != nil {
				t.Fatalf("got %v decoding one assertion of a bundle, want nil", err)
			}
		}
	})
}

// FuzzDecodeCommand feeds arbitrary bytes, as they may arrive from the
// broker, through DecodeBundle and ParseCommand: they must never panic, and
// a command they accept must sign its fields again unchanged.
func FuzzDecodeCommand(f *testing.F) {
	seeds := fuzzSeeds(f)
	f.Add(seeds[3])
	f.Add(seeds[4])
	f.Add(bytes.Join(seeds[2:4], nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := DecodeBundle(data)
		if err != nil {
			return
		}
		for _, a := range as {
			c, err := ParseCommand(a)
			if err != nil {
				if a.Type() == CommandType {
					t.Fatalf("got %v parsing a decoded command, want nil", err)
				}
				continue
			}
			if c.ID != a.Header("id") || c.Target != a.Header("target") || !bytes.Equal(c.Body, a.Body()) {
				t.Fatalf("got command %+v, want the headers and body of the assertion", c)
			}
			if kind, name := c.SplitTarget(); kind+"/"+name != c.Target {
				t.Fatalf("got target split %q %q, want %q", kind, name, c.Target)
			}
		}
	})
}
