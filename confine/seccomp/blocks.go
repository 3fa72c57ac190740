package seccomp

import "slices"

// block is the set of 32-bit values v with v&mask == value, where mask has
// its leading bits set: an aligned block, as in a CIDR prefix.
type block struct{ mask, value uint64 }

// complementBlocks returns the fewest aligned blocks that cover every
// 32-bit value except those in excluded.
func complementBlocks(excluded []uint64) []block {
	ex := slices.Clone(excluded)
	slices.Sort(ex)
	return appendBlocks(nil, 0, 0, ex)
}

// appendBlocks covers the block of prefix length bits starting at start,
// less ex (the sorted excluded values inside it).
func appendBlocks(out []block, start uint64, bits uint, ex []uint64) []block {
	if len(ex) == 0 {
		return append(out, block{mask: prefixMask(bits), value: start})
	}
	if bits == 32 {
		return out
	}
	half := start | 1<<(31-bits)
	i, _ := slices.BinarySearch(ex, half)
	out = appendBlocks(out, start, bits+1, ex[:i])
	return appendBlocks(out, half, bits+1, ex[i:])
}

// prefixMask returns the 32-bit mask of the leading bits.
func prefixMask(bits uint) uint64 {
	return (0xffffffff << (32 - bits)) & 0xffffffff
}
