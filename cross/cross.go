// Package cross describes the static binaries that 'make cross' builds for
// the boards (bin/paddock-linux-ARCH) and checks one with debug/elf: its
// machine, its class and that it is static (no program interpreter).
package cross

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
)

// A Target is one board architecture that 'make cross' builds for.
type Target struct {
	Name    string      // the suffix of bin/paddock-linux-NAME: amd64, arm64, armv7
	GOARCH  string      // the Go architecture it is built for
	Machine elf.Machine // the ELF machine of the binary
	Class   elf.Class   // 32- or 64-bit
	QEMU    []string    // the qemu-user commands that run it, first found wins
}

// Targets lists what 'make cross' builds.
var Targets = []Target{
	{"amd64", "amd64", elf.EM_X86_64, elf.ELFCLASS64, []string{"qemu-x86_64-static", "qemu-x86_64"}},
	{"arm64", "arm64", elf.EM_AARCH64, elf.ELFCLASS64, []string{"qemu-aarch64-static", "qemu-aarch64"}},
	{"armv7", "arm", elf.EM_ARM, elf.ELFCLASS32, []string{"qemu-arm-static", "qemu-arm"}},
}

// The ARM e_flags of a binary for Debian armhf: EABI version 5, hard float.
const (
	armEABIMask  = 0xff000000
	armEABI5     = 0x05000000
	armHardFloat = 0x00000400 // EF_ARM_ABI_FLOAT_HARD
)

// Check tells why the ELF file at path is not a static Linux binary of t,
// or nil if it is one.
func Check(path string, t Target) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Class != t.Class {
		return fmt.Errorf("%s: class %v, want %v", path, f.Class, t.Class)
	}
	if f.Machine != t.Machine {
		return fmt.Errorf("%s: machine %v, want %v", path, f.Machine, t.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: type %v, want an executable", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: has a program interpreter (PT_INTERP): not statically linked", path)
		}
	}
	if t.Machine == elf.EM_ARM {
		flags, err := elfFlags(path, f)
		if err != nil {
			return err
		}
		if flags&armEABIMask != armEABI5 {
			return fmt.Errorf("%s: ARM EABI version %#x, want 5", path, flags>>24)
		}
		if flags&armHardFloat == 0 {
			return fmt.Errorf("%s: ARM soft-float ABI, want hard float (armhf)", path)
		}
	}
	return nil
}

// elfFlags reads the e_flags of the ELF header at path, which debug/elf
// does not keep.
func elfFlags(path string, f *elf.File) (uint32, error) {
	r, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if f.Class == elf.ELFCLASS64 {
		var h elf.Header64
		err = binary.Read(r, f.ByteOrder, &h)
		return h.Flags, err
	}
	var h elf.Header32
	err = binary.Read(r, f.ByteOrder, &h)
	return h.Flags, err
}
