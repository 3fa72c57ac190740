package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// buildIDHead is how much of a binary goBuildID reads: the ELF header, the
// program headers and the notes, which linkers place first.
const buildIDHead = 64 << 10

// sameBuild reports whether the ELF files a and b carry the same Go build
// ID, that is, are the same build.
func sameBuild(a, b string) bool {
	ida, erra := goBuildID(a)
	idb, errb := goBuildID(b)
	return erra == nil && errb == nil && len(ida) > 0 && bytes.Equal(ida, idb)
}

// goBuildID reads the note in which the Go linker records the build ID.
// It goes through the program headers to the notes at the start of the
// file, so that a binary on the compressed base is read no further (the
// section headers are at its end).
func goBuildID(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, buildIDHead)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return buildIDFromHead(head[:n])
}

var errNoBuildID = errors.New("no Go build ID in the first 64 KiB")

// buildIDFromHead finds the Go build ID note ("Go", type 4) in the PT_NOTE
// segments of head, the start of a 32- or 64-bit ELF file of either byte
// order.
func buildIDFromHead(head []byte) ([]byte, error) {
	if len(head) < 0x34 || string(head[:4]) != elf.ELFMAG {
		return nil, errors.New("not an ELF file")
	}
	var bo binary.ByteOrder
	switch elf.Data(head[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return nil, errors.New("ELF file of unknown byte order")
	}
	// Where the program headers are, and where in each one its type,
	// offset, size and alignment are.
	var phoff, phentsize, phnum uint64
	var word func(b []byte) uint64
	var offAt, sizeAt, alignAt int
	switch elf.Class(head[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		if len(head) < 0x40 {
			return nil, errNoBuildID
		}
		phoff, phentsize, phnum = bo.Uint64(head[0x20:]), uint64(bo.Uint16(head[0x36:])), uint64(bo.Uint16(head[0x38:]))
		word = bo.Uint64
		offAt, sizeAt, alignAt = 0x08, 0x20, 0x30
	case elf.ELFCLASS32:
		phoff, phentsize, phnum = uint64(bo.Uint32(head[0x1c:])), uint64(bo.Uint16(head[0x2a:])), uint64(bo.Uint16(head[0x2c:]))
		word = func(b []byte) uint64 { return uint64(bo.Uint32(b)) }
		offAt, sizeAt, alignAt = 0x04, 0x10, 0x1c
	default:
		return nil, errors.New("ELF file of unknown class")
	}
	if phentsize < uint64(alignAt+4) {
		return nil, errNoBuildID
	}
	for i := range phnum {
		start := phoff + i*phentsize
		if start > uint64(len(head)) || phentsize > uint64(len(head))-start {
			break
		}
		ph := head[start : start+phentsize]
		if elf.ProgType(bo.Uint32(ph)) != elf.PT_NOTE {
			continue
		}
		off, size, align := word(ph[offAt:]), word(ph[sizeAt:]), word(ph[alignAt:])
		if off > uint64(len(head)) || size > uint64(len(head))-off {
			continue
		}
		if id, ok := goNote(head[off:off+size], bo, align); ok {
			return id, nil
		}
	}
	return nil, errNoBuildID
}

// goNote returns the description of the Go build ID note among notes.
func goNote(notes []byte, bo binary.ByteOrder, align uint64) ([]byte, bool) {
	pad := func(n uint64) uint64 {
		if align == 8 {
			return (n + 7) &^ 7
		}
		return (n + 3) &^ 3
	}
	for uint64(len(notes)) >= 12 {
		namesz, descsz, typ := uint64(bo.Uint32(notes)), uint64(bo.Uint32(notes[4:])), bo.Uint32(notes[8:])
		rest := uint64(len(notes)) - 12
		if namesz > rest || pad(namesz) > rest || descsz > rest-pad(namesz) {
			return nil, false
		}
		name := notes[12 : 12+namesz]
		desc := notes[12+pad(namesz) : 12+pad(namesz)+descsz]
		if typ == 4 && string(bytes.TrimRight(name, "\x00")) == "Go" {
			return desc, true
		}
		next := 12 + pad(namesz) + pad(descsz)
		if next > uint64(len(notes)) {
			return nil, false
		}
		notes = notes[next:]
	}
	return nil, false
}
