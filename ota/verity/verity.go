// Package verity computes dm-verity hash trees in the format the kernel
// and veritysetup use: format version 1, sha256, 4096-byte data and hash
// blocks, the salt before the data of each hash, no superblock. A slot
// image of a base is its data (the SquashFS, zero-padded to whole blocks)
// followed by the tree, as 'veritysetup format --no-superblock
// --hash-offset=DATASIZE' would write it: the tree's top level first, then
// each lower level, each level padded to whole blocks.
package verity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// BlockSize is the size of the data and hash blocks.
const BlockSize = 4096

// hashesPerBlock is how many sha256 digests one hash block holds.
const hashesPerBlock = BlockSize / sha256.Size

// MaxSalt bounds the salt, as veritysetup does.
const MaxSalt = 256

// Tree is the hash tree of some data.
type Tree struct {
	// Root is the root hash.
	Root []byte
	// levels are the hash levels, level 0 (the hashes of the data blocks)
	// first, each padded to whole blocks.
	levels [][]byte
}

// Bytes returns the tree as it is stored after the data: the top level
// first.
func (t *Tree) Bytes() []byte {
	var out []byte
	for i := len(t.levels) - 1; i >= 0; i-- {
		out = append(out, t.levels[i]...)
	}
	return out
}

// Size returns the size in bytes of the stored tree.
func (t *Tree) Size() int64 {
	var n int64
	for _, l := range t.levels {
		n += int64(len(l))
	}
	return n
}

// TreeSize returns the size of the tree of dataSize bytes of data, a
// multiple of BlockSize.
func TreeSize(dataSize int64) int64 {
	var n int64
	for blocks := dataSize / BlockSize; blocks > 1; {
		blocks = (blocks + hashesPerBlock - 1) / hashesPerBlock
		n += blocks
	}
	return n * BlockSize
}

// hasher hashes blocks as version 1 does: sha256(salt || block).
type hasher struct {
	salt []byte
	h    hash.Hash
}

func (h *hasher) sum(dst, block []byte) []byte {
	h.h.Reset()
	h.h.Write(h.salt)
	h.h.Write(block)
	return h.h.Sum(dst)
}

// Build reads dataSize bytes from r (a multiple of BlockSize, at least one
// block) and returns their tree with salt.
func Build(r io.Reader, dataSize int64, salt []byte) (*Tree, error) {
	if dataSize <= 0 || dataSize%BlockSize != 0 {
		return nil, fmt.Errorf("cannot build hash tree: data size %d is not a positive multiple of %d", dataSize, BlockSize)
	}
	if len(salt) > MaxSalt {
		return nil, fmt.Errorf("cannot build hash tree: salt of %d bytes, want at most %d", len(salt), MaxSalt)
	}
	h := &hasher{salt: salt, h: sha256.New()}
	blocks := dataSize / BlockSize
	level := make([]byte, 0, roundUp(blocks*sha256.Size))
	buf := make([]byte, 64*BlockSize)
	for done := int64(0); done < blocks; {
		n := min(int64(len(buf)/BlockSize), blocks-done)
		if _, err := io.ReadFull(r, buf[:n*BlockSize]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("cannot build hash tree: %w", err)
		}
		for i := int64(0); i < n; i++ {
			level = h.sum(level, buf[i*BlockSize:(i+1)*BlockSize])
		}
		done += n
	}
	if blocks == 1 {
		// No tree: the kernel compares the data block's hash with the root.
		return &Tree{Root: level}, nil
	}
	t := &Tree{}
	for {
		level = pad(level)
		t.levels = append(t.levels, level)
		if len(level) == BlockSize {
			t.Root = h.sum(nil, level)
			return t, nil
		}
		next := make([]byte, 0, roundUp(int64(len(level)/BlockSize)*sha256.Size))
		for i := 0; i < len(level); i += BlockSize {
			next = h.sum(next, level[i:i+BlockSize])
		}
		level = next
	}
}

func roundUp(n int64) int64 { return (n + BlockSize - 1) / BlockSize * BlockSize }

// pad zero-pads b to whole blocks.
func pad(b []byte) []byte {
	if n := roundUp(int64(len(b))); n > int64(len(b)) {
		b = append(b, make([]byte, n-int64(len(b)))...)
	}
	return b
}
