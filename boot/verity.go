package boot

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"paddock.dev/paddock/internal/partition"
)

// A verified base: init mounts a slot's SquashFS through a dm-verity
// target whose root hash comes from the slot's signed base-revision
// assertion, so the kernel checks every block it reads against a hash
// tree that the publisher signed. A slot image (written raw to base-a or
// base-b) is the SquashFS zero-padded to a multiple of 4096 bytes (the
// data, DataSize bytes), then the hash tree (format 1, sha256, 4096-byte
// data and hash blocks, with a salt, no superblock), as
// 'veritysetup format --no-superblock --hash-offset=DATASIZE' makes it.

// BaseInfo is what init needs of a slot's base-revision assertion.
type BaseInfo struct {
	Name, Revision, Version, Arch string
	// RootHash and Salt are hex; DataSize is the size of the padded
	// SquashFS, where the hash tree starts.
	RootHash string
	Salt     string
	DataSize int64
}

// CheckBase verifies a slot's assertion bundle (the base-revision with
// the account-key that delegates its signing key) against the trusted
// root keys (armored) and returns what it says. The paddock command sets
// it: package boot cannot import the assertion packages (imports go one
// way, cmd → agent → {ota, boot}).
var CheckBase func(bundle []byte, trusted [][]byte) (*BaseInfo, error)

// trustedRel is where the initramfs carries the device's trusted root
// keys (*.asc), relative to its root: 'paddock image initrd --trust'.
const trustedRel = "etc/paddock/trusted"

// maxAssertion bounds what init reads of an assertion file.
const maxAssertion = 1 << 20

// verityBlock is the data and hash block size of a slot image.
const verityBlock = 4096

// trustedKeys reads the armored keys the initramfs carries. None means a
// development initramfs: the base is mounted without verity.
func trustedKeys(dir string) ([][]byte, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("cannot read the trusted keys: %w", err)
	}
	var keys [][]byte
	for _, ent := range ents {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".asc") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			return nil, fmt.Errorf("cannot read the trusted keys: %w", err)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// readBaseInfo reads and checks the assertion of slot's base kept on the
// data partition mounted at dataDir.
func readBaseInfo(dataDir, slot string, keys [][]byte) (*BaseInfo, error) {
	p := filepath.Join(dataDir, partition.StateDir, partition.BaseAssertion(slot))
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("slot %s has no base assertion (%s): it was never written by an update, or the write did not finish", slot, partition.BaseAssertion(slot))
	} else if err != nil {
		return nil, fmt.Errorf("cannot read the assertion of slot %s: %w", slot, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAssertion+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the assertion of slot %s: %w", slot, err)
	}
	if len(b) > maxAssertion {
		return nil, fmt.Errorf("the assertion of slot %s is larger than %d bytes", slot, maxAssertion)
	}
	if CheckBase == nil {
		return nil, errors.New("internal error: this build cannot check base assertions")
	}
	info, err := CheckBase(b, keys)
	if err != nil {
		return nil, fmt.Errorf("the assertion of slot %s: %w", slot, err)
	}
	if err := info.check(); err != nil {
		return nil, fmt.Errorf("the assertion of slot %s: %w", slot, err)
	}
	return info, nil
}

// check checks the values that go into the kernel's table: they must be
// what they say, never words of their own.
func (b *BaseInfo) check() error {
	if b.Arch != "" && b.Arch != runtime.GOARCH {
		return fmt.Errorf("the base is for %s, this device is %s", b.Arch, runtime.GOARCH)
	}
	if h, err := hex.DecodeString(b.RootHash); err != nil || len(h) != 32 {
		return errors.New("verity root hash is not 64 hex digits")
	}
	if b.Salt != "-" {
		if s, err := hex.DecodeString(b.Salt); err != nil || len(s) == 0 || len(s) > 256 {
			return errors.New("verity salt is not hex (at most 256 bytes) or -")
		}
	}
	if b.DataSize <= 0 || b.DataSize%verityBlock != 0 {
		return fmt.Errorf("verity data size %d is not a positive multiple of %d", b.DataSize, verityBlock)
	}
	return nil
}

// verityTable returns the dm-verity table line of a slot image on dev
// (data and hash tree on the same device, the tree at DataSize): the
// target's length in 512-byte sectors and its parameters. With restart,
// a corrupted block read later reboots the device (restart_on_corruption)
// instead of failing the read with EIO.
func verityTable(dev string, b *BaseInfo, restart bool) (sectors uint64, params string) {
	blocks := b.DataSize / verityBlock
	params = fmt.Sprintf("1 %s %s %d %d %d %d sha256 %s %s", dev, dev, verityBlock, verityBlock, blocks, blocks, b.RootHash, b.Salt)
	if restart {
		params += " 1 restart_on_corruption"
	}
	return uint64(b.DataSize / 512), params
}

// hashTreeSize returns the size of the hash tree of dataSize bytes: each
// level holds a 32-byte hash of each block of the level below, in whole
// 4096-byte blocks, up to a level of one block.
func hashTreeSize(dataSize int64) int64 {
	const perBlock = verityBlock / 32
	var total int64
	blocks := (dataSize + verityBlock - 1) / verityBlock
	for {
		blocks = (blocks + perBlock - 1) / perBlock
		total += blocks * verityBlock
		if blocks == 1 {
			return total
		}
	}
}
