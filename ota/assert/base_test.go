package assert

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/verity"
)

func testBaseRevision() *BaseRevision {
	data := int64(300 * verity.BlockSize)
	size := data + verity.TreeSize(data)
	r := &BaseRevision{
		Name: "paddock-base", Version: "2", Revision: 2, Arch: "amd64",
		Size: size, SHA256: strings.Repeat("ab", 32), ChunkSize: 256 << 10,
		VerityDataSize: data, VerityRootHash: strings.Repeat("cd", 32), VeritySalt: "0011",
		Timestamp: testTime,
	}
	for i := range ChunkCount(size, r.ChunkSize) {
		r.Chunks = append(r.Chunks, fmt.Sprintf("%064x", i))
	}
	return r
}

func signBaseRevision(t testing.TB, key *keys.PrivateKey, edit func(*BaseRevision)) *Assertion {
	t.Helper()
	r := testBaseRevision()
	if edit != nil {
		edit(r)
	}
	a, err := SignBaseRevision(r, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBaseRevision(t *testing.T) {
	key := newKey(t, "pub")
	a := signBaseRevision(t, key, nil)
	b, err := Decode(a.Encode())
	if err != nil {
		t.Fatalf("got %v decoding a signed base-revision, want nil", err)
	}
	if err := b.Verify(key.Public()); err != nil {
		t.Fatal(err)
	}
	r, err := ParseBaseRevision(b)
	if err != nil {
		t.Fatal(err)
	}
	want := testBaseRevision()
	want.SignKey, want.AuthorityID = key.Public().Fingerprint(), "pub"
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if got := len(r.Chunks); got != 5 {
		t.Errorf("got %d chunks, want 5", got)
	}
}

func TestSignBaseRevisionRefuses(t *testing.T) {
	key := newKey(t, "pub")
	for _, tc := range []struct {
		name string
		edit func(*BaseRevision)
		want string
	}{
		{"chunk size not whole blocks", func(r *BaseRevision) { r.ChunkSize = 5000 }, "chunk-size 5000"},
		{"chunk size too large", func(r *BaseRevision) { r.ChunkSize = 128 << 20 }, "chunk-size"},
		{"a chunk missing", func(r *BaseRevision) { r.Chunks = r.Chunks[1:] }, "want 5 lines"},
		{"a bad chunk", func(r *BaseRevision) { r.Chunks[2] = strings.Repeat("G", 64) }, "line 3"},
		{"size without the tree", func(r *BaseRevision) { r.Size = r.VerityDataSize }, "not verity-data-size"},
		{"data not whole blocks", func(r *BaseRevision) { r.VerityDataSize++ }, "not a multiple"},
		{"salt odd", func(r *BaseRevision) { r.VeritySalt = "abc" }, "verity-salt"},
		{"salt upper case", func(r *BaseRevision) { r.VeritySalt = "AB" }, "verity-salt"},
		{"root hash", func(r *BaseRevision) { r.VerityRootHash = "00" }, "verity-root-hash"},
		{"revision", func(r *BaseRevision) { r.Revision = 0 }, "revision"},
		// Was capped silently at 2^31-1 (and wraps in an int on armv7).
		{"revision too large", func(r *BaseRevision) { big := int64(maxRevision); r.Revision = int(big + 1) }, "revision"},
		{"arch", func(r *BaseRevision) { r.Arch = "AMD64" }, "arch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testBaseRevision()
			tc.edit(r)
			_, err := SignBaseRevision(r, key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestParseChunks(t *testing.T) {
	h := strings.Repeat("0f", 32) + "\n"
	for _, tc := range []struct {
		name string
		body string
		want int64
		ok   bool
	}{
		{"two", h + h, 2, true},
		{"one short", h, 2, false},
		{"no newline", h + h[:64] + "x", 2, false},
		{"crlf", h + h[:63] + "\r\n", 2, false},
		{"too many chunks", "", MaxSize, false},
		{"none", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChunks([]byte(tc.body), tc.want)
			if (err == nil) != tc.ok {
				t.Fatalf("got error %v, want ok %v", err, tc.ok)
			}
			if tc.ok && int64(len(got)) != tc.want {
				t.Errorf("got %d chunks, want %d", len(got), tc.want)
			}
		})
	}
}

// FuzzParseChunks checks that the chunk list parser never panics and that
// what it accepts encodes back to the input.
func FuzzParseChunks(f *testing.F) {
	f.Add(EncodeChunks(testBaseRevision().Chunks), int64(5))
	f.Add([]byte(strings.Repeat("0", 64)+"\n"), int64(1))
	f.Fuzz(func(t *testing.T, body []byte, n int64) {
		chunks, err := ParseChunks(body, n)
		if err != nil {
			return
		}
		if int64(len(chunks)) != n {
			t.Fatalf("got %d chunks, want %d", len(chunks), n)
		}
		if enc := EncodeChunks(chunks); !bytes.Equal(enc, body) {
			t.Fatalf("got re-encoding %q, want the input %q", enc, body)
		}
	})
}
