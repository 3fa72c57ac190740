package assert

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/verity"
)

// BaseRevisionType is the type of a base-revision assertion: one revision
// of a base, as the slot image that is written raw to a base partition.
const BaseRevisionType = "base-revision"

// Bounds of a base-revision's chunks.
const (
	// MinChunkSize and MaxChunkSize bound chunk-size, a multiple of
	// verity.BlockSize.
	MinChunkSize = verity.BlockSize
	MaxChunkSize = 64 << 20
	// chunkLine is the length of one line of the body: 64 hex digits and
	// a newline.
	chunkLine = 65
)

// BaseRevision is a base-revision assertion. The slot image it describes
// is the base's SquashFS, zero-padded to VerityDataSize, followed by its
// dm-verity hash tree (package verity); Size and SHA256 are those of the
// whole image, and Chunks the sha256 of each ChunkSize bytes of it (the
// last chunk may be shorter), so that an update can check and resume it
// chunk by chunk.
type BaseRevision struct {
	// SignKey is the fingerprint of the publisher's key.
	SignKey string
	// AuthorityID is the name the publisher's key gives itself.
	AuthorityID string
	Name        string
	Version     string
	Revision    int
	Arch        string
	Size        int64
	// SHA256 is the lowercase hex digest of the slot image.
	SHA256    string
	ChunkSize int64
	// Chunks are the lowercase hex digests of the chunks, in order.
	Chunks []string
	// VerityDataSize is the size of the data before the hash tree.
	VerityDataSize int64
	// VerityRootHash and VeritySalt are lowercase hex.
	VerityRootHash string
	VeritySalt     string
	Timestamp      time.Time
}

// ChunkCount returns how many chunks an image of size bytes has in chunks
// of chunkSize bytes.
func ChunkCount(size, chunkSize int64) int64 { return (size + chunkSize - 1) / chunkSize }

// ParseBaseRevision returns the typed content of a base-revision
// assertion, checking every value.
func ParseBaseRevision(a *Assertion) (*BaseRevision, error) {
	if a.Type() != BaseRevisionType {
		return nil, fmt.Errorf("cannot parse %s as %s", a.Type(), BaseRevisionType)
	}
	r := &BaseRevision{
		SignKey:        a.SignKey(),
		AuthorityID:    a.AuthorityID(),
		Name:           a.Header("name"),
		Version:        a.Header("version"),
		Arch:           a.Header("arch"),
		SHA256:         a.Header("sha256"),
		VerityRootHash: a.Header("verity-root-hash"),
		VeritySalt:     a.Header("verity-salt"),
	}
	c := &checker{a: a}
	rev, size := c.revision(r.Name, r.Version, r.Arch, r.SHA256)
	r.Revision, r.Size = int(rev), size
	r.ChunkSize = c.positive("chunk-size")
	c.check(r.ChunkSize%MinChunkSize != 0 || r.ChunkSize > MaxChunkSize, "chunk-size %d (want a multiple of %d, at most %d)", r.ChunkSize, MinChunkSize, MaxChunkSize)
	r.VerityDataSize = c.positive("verity-data-size")
	c.check(r.VerityDataSize%verity.BlockSize != 0, "verity-data-size %d is not a multiple of %d", r.VerityDataSize, verity.BlockSize)
	c.check(c.err == nil && r.Size != r.VerityDataSize+verity.TreeSize(r.VerityDataSize),
		"size %d is not verity-data-size %d plus its hash tree (%d bytes)", r.Size, r.VerityDataSize, verity.TreeSize(r.VerityDataSize))
	c.check(!validSHA256().MatchString(r.VerityRootHash), "verity-root-hash %q (want 64 lowercase hex digits)", r.VerityRootHash)
	salt, serr := hex.DecodeString(r.VeritySalt)
	c.check(serr != nil || len(salt) > verity.MaxSalt || hex.EncodeToString(salt) != r.VeritySalt,
		"verity-salt %q (want at most %d bytes in lowercase hex)", r.VeritySalt, verity.MaxSalt)
	r.Timestamp = c.time("timestamp")
	if c.err != nil {
		return nil, c.err
	}
	var err error
	if r.Chunks, err = ParseChunks(a.body, ChunkCount(r.Size, r.ChunkSize)); err != nil {
		return nil, fmt.Errorf("invalid base-revision body: %w", err)
	}
	return r, nil
}

// ParseChunks parses the body of a base-revision: want lines of 64
// lowercase hex digits, each ended by a newline.
func ParseChunks(body []byte, want int64) ([]string, error) {
	if want <= 0 || want > int64(MaxSize/chunkLine) {
		return nil, fmt.Errorf("%d chunks (want 1 to %d: raise chunk-size)", want, MaxSize/chunkLine)
	}
	if int64(len(body)) != want*chunkLine {
		return nil, fmt.Errorf("%d bytes, want %d lines of a sha256 (%d bytes)", len(body), want, want*chunkLine)
	}
	chunks := make([]string, 0, want)
	for line := range bytes.Lines(body) {
		h := string(line[:len(line)-1])
		if line[len(line)-1] != '\n' || !validSHA256().MatchString(h) {
			return nil, fmt.Errorf("line %d is not 64 lowercase hex digits", len(chunks)+1)
		}
		chunks = append(chunks, h)
	}
	return chunks, nil
}

// EncodeChunks returns the body of a base-revision listing chunks.
func EncodeChunks(chunks []string) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		b.WriteString(c)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// SignBaseRevision makes a base-revision assertion for r, signed by key.
// r.SignKey and r.AuthorityID are ignored.
func SignBaseRevision(r *BaseRevision, key *keys.PrivateKey) (*Assertion, error) {
	hs := append(revisionHeaders(r.Name, r.Version, r.Revision, r.Arch, r.Size, r.SHA256),
		Header{"chunk-size", strconv.FormatInt(r.ChunkSize, 10)},
		Header{"verity-data-size", strconv.FormatInt(r.VerityDataSize, 10)},
		Header{"verity-root-hash", r.VerityRootHash},
		Header{"verity-salt", r.VeritySalt},
		Header{"timestamp", FormatTime(r.Timestamp)},
	)
	return Sign(BaseRevisionType, hs, EncodeChunks(r.Chunks), key)
}
