// Package baseupdate makes and writes base slot images. A slot image is a
// base's SquashFS, zero-padded to whole 4096-byte blocks, followed by its
// dm-verity hash tree (package verity); a signed base-revision assertion
// gives its size, sha256, the sha256 of each chunk, and the tree's root
// hash and salt. An Update streams an image into the inactive slot while
// hashing it and checks each chunk before it writes it; each batch
// written is read back from the medium and checked again while the next
// batch arrives, so that the whole slot is read back by the end of the
// write, and the slot is fsynced and the chunks read back recorded in a
// checkpoint every SyncEvery bytes. A power cut, a reboot or a lost
// connection resumes from the last checkpoint, extended over the chunks
// the slot holds beyond it (read back and checked), losing at most
// SyncEvery bytes of the work. It copies the chunks the running slot
// already holds instead of downloading them.
package baseupdate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/verity"
)

// DefaultChunkSize is the chunk size of a slot image, raised for images
// so large that their chunk list would not fit in the assertion.
const DefaultChunkSize = 1 << 20

// maxChunks bounds the chunks of an image made by MakeImage, to keep its
// base-revision well under assert.MaxSize.
const maxChunks = 900

// Image describes a slot image: what its base-revision states, but its
// name, revision and signature.
type Image struct {
	Size      int64
	SHA256    string
	ChunkSize int64
	Chunks    []string
	// DataSize is the size of the padded SquashFS, before the hash tree.
	DataSize int64
	// RootHash and Salt are the hash tree's, in hex.
	RootHash, Salt string
}

// ChunkSizeFor returns the chunk size for an image of size bytes.
func ChunkSizeFor(size int64) int64 {
	c := int64(DefaultChunkSize)
	for assert.ChunkCount(size, c) > maxChunks && c < assert.MaxChunkSize {
		c *= 2
	}
	return c
}

// MakeImage writes the slot image of the SquashFS file squashfs to out
// (through a temporary file renamed at the end) and returns what describes
// it. The salt of the hash tree is derived from the SquashFS's digest, so
// the same SquashFS gives the same image.
func MakeImage(squashfs, out string) (*Image, error) {
	in, err := os.Open(squashfs)
	if err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.Copy(h, in)
	if err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("cannot make slot image: %s is empty", squashfs)
	}
	saltSum := sha256.Sum256(append([]byte("paddock verity salt\x00"), h.Sum(nil)...))
	salt := saltSum[:]
	dataSize := (n + verity.BlockSize - 1) / verity.BlockSize * verity.BlockSize
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	data := io.TeeReader(io.MultiReader(in, io.LimitReader(zeros{}, dataSize-n)), tmp)
	tree, err := verity.Build(data, dataSize, salt)
	if err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if _, err := tmp.Write(tree.Bytes()); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	img := &Image{DataSize: dataSize, RootHash: hex.EncodeToString(tree.Root), Salt: hex.EncodeToString(salt)}
	img.Size = dataSize + tree.Size()
	img.ChunkSize = ChunkSizeFor(img.Size)
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if img.SHA256, img.Chunks, err = HashChunks(tmp, img.Size, img.ChunkSize); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("cannot make slot image: %w", err)
	}
	return img, nil
}

// HashChunks reads size bytes of r and returns their sha256 and the sha256
// of each chunk of chunkSize bytes, in hex.
func HashChunks(r io.Reader, size, chunkSize int64) (string, []string, error) {
	whole := sha256.New()
	var chunks []string
	buf := make([]byte, chunkSize)
	for off := int64(0); off < size; off += chunkSize {
		b := buf[:min(chunkSize, size-off)]
		if _, err := io.ReadFull(r, b); err != nil {
			return "", nil, fmt.Errorf("cannot read byte %d of %d: %w", off, size, err)
		}
		whole.Write(b)
		sum := sha256.Sum256(b)
		chunks = append(chunks, hex.EncodeToString(sum[:]))
	}
	return hex.EncodeToString(whole.Sum(nil)), chunks, nil
}

// Revision returns the base-revision of the image (unsigned, without the
// name, version, revision, arch and timestamp).
func (img *Image) Revision() *assert.BaseRevision {
	return &assert.BaseRevision{
		Size: img.Size, SHA256: img.SHA256, ChunkSize: img.ChunkSize, Chunks: img.Chunks,
		VerityDataSize: img.DataSize, VerityRootHash: img.RootHash, VeritySalt: img.Salt,
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
