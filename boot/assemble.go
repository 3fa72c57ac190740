package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// triedBoot is set in stage 1 when the slot being booted is a try: a
// failure then reboots (the next boot counts the attempt and, once they
// are used up, falls back) instead of powering off.
var triedBoot bool

// refuse handles a slot that did not mount (no valid assertion, verity
// setup failed, a corrupted block, a mount error): it returns the slot to
// try next, or "" when there is none. A refused try ends at once: the
// slot is marked bad with why and the environment written, and the
// known-good slot boots. A refused known-good slot falls back to the other
// slot when that is not marked bad and has not been refused in this boot
// (the environment is left alone: nothing is committed). A forced slot
// (paddock.slot) has no fallback.
func refuse(con *console, c *choice, slot string, why error, refused map[string]bool, rec *BootRecord) string {
	refused[slot] = true
	reason := oneLine(why.Error())
	switch {
	case c.forced:
		return ""
	case c.tried && slot == c.env.Trying:
		c.env.fail(slot, "refused at boot: "+reason)
		p := fmt.Sprintf("base: slot %s refused at boot: %s; booting the known-good slot %s", slot, reason, c.env.Slot)
		if err := Write(c.bootenv, c.env); err != nil {
			p += "; cannot record it in the boot environment: " + oneLine(err.Error())
		}
		c.problems = append(c.problems, p)
		con.logf("%s", p)
		c.tried = false
		rec.Fallback = p
		if refused[c.env.Slot] {
			return ""
		}
		return c.env.Slot
	}
	other := otherSlot(slot)
	if refused[other] || other == c.env.Bad {
		return ""
	}
	p := fmt.Sprintf("base: slot %s refused at boot: %s; falling back to slot %s", slot, reason, other)
	c.problems = append(c.problems, p)
	con.logf("%s", p)
	rec.Fallback = p
	return other
}

func otherSlot(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// verifiedText says whether the record's base is verified, for the trace.
func verifiedText(r *BootRecord) string {
	if r.Verified {
		return "verified by dm-verity, root hash " + r.RootHash
	}
	return "not verified: " + r.Unverified
}

// nodes maps each partition name to its device node.
func (p partitions) nodes() map[string]string {
	m := make(map[string]string, len(p))
	for name := range p {
		m[name] = p.node(name)
	}
	return m
}

// size returns the size in bytes of the partition name, from sysfs (in
// 512-byte sectors there).
func (p partitions) size(name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(sysClassBlock, p[name], "size"))
	if err != nil {
		return 0, fmt.Errorf("cannot read the size of %s: %w", name, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cannot read the size of %s: not a number", name)
	}
	return n * 512, nil
}

// checkFits checks that the partition holds the slot image the assertion
// describes: the data and its hash tree.
func checkFits(partSize int64, b *BaseInfo) error {
	if need := b.DataSize + hashTreeSize(b.DataSize); need > partSize {
		return fmt.Errorf("the base and its hash tree need %d bytes, the partition has %d", need, partSize)
	}
	return nil
}
