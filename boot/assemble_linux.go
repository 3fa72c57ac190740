package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"paddock.dev/paddock/internal/partition"
)

// assembleBase mounts the base of the chosen slot at newRootDir, through
// dm-verity when the initramfs carries trusted keys, falling back to the
// other slot when it is refused (see refuse). It fills rec.
func assembleBase(con *console, c *choice, parts partitions, keys [][]byte, rec *BootRecord) error {
	refused := map[string]bool{}
	var whys []string
	slot := c.slot
	for slot != "" {
		err := mountSlot(con, slot, parts, keys, c.tried && slot == c.env.Trying, rec)
		if err == nil {
			rec.Slot, rec.Tried = slot, c.tried && slot == c.env.Trying
			return nil
		}
		whys = append(whys, fmt.Sprintf("slot %s: %v", slot, err))
		slot = refuse(con, c, slot, err, refused, rec)
	}
	return fmt.Errorf("no base slot boots: %s", joinWhys(whys))
}

func joinWhys(whys []string) string {
	s := ""
	for i, w := range whys {
		if i > 0 {
			s += "; "
		}
		s += w
	}
	return s
}

// mountSlot mounts slot's base read-only at newRootDir. With trusted keys
// it checks the slot's assertion, sets up the dm-verity target from it
// and mounts through it; a try is read through once first, so that a
// corrupted block anywhere refuses it before it runs.
func mountSlot(con *console, slot string, parts partitions, keys [][]byte, tried bool, rec *BootRecord) error {
	name := partition.Base(slot)
	if len(parts.missing([]string{name})) > 0 {
		more, err := waitPartitions(time.Second, name)
		if err != nil {
			return err
		}
		parts[name] = more[name]
	}
	source := parts.node(name)
	*rec = BootRecord{Bootenv: rec.Bootenv, Partitions: rec.Partitions, Fallback: rec.Fallback}
	dmName := ""
	if len(keys) == 0 {
		rec.Unverified = "the initramfs carries no trusted keys (a development image): the base is not checked"
	} else {
		info, err := readBaseInfo(earlyDataDir, slot, keys)
		if err != nil {
			return err
		}
		size, err := parts.size(name)
		if err != nil {
			return err
		}
		if err := checkFits(size, info); err != nil {
			return fmt.Errorf("verity: %w", err)
		}
		sectors, params := verityTable(source, info, false)
		dmName = "paddock-base-" + slot
		dev, err := dmCreate(dmName, dmTarget{length: sectors, kind: "verity", params: params})
		if err != nil {
			return fmt.Errorf("verity: %w", err)
		}
		con.tracef("verity target %s: %s", dev, params)
		if tried {
			start := time.Now()
			n, err := readThrough(dev)
			if err != nil {
				dmRemove(dmName)
				return fmt.Errorf("verity: the base does not match its signed root hash (a block at %d bytes fails): %w", n, err)
			}
			con.tracef("tried base read through: %d bytes verified in %v", n, time.Since(start).Round(time.Millisecond))
		}
		source = dev
		rec.Verified, rec.RootHash, rec.Revision, rec.Version = true, info.RootHash, info.Revision, info.Version
	}
	if err := runMountStep(mountStep{source: source, target: newRootDir, fstype: "squashfs", flags: mReadOnly}); err != nil {
		if dmName != "" {
			dmRemove(dmName)
		}
		return err
	}
	return nil
}

// readThrough reads the whole device, so that dm-verity checks every
// block; it returns how far it got.
func readThrough(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
