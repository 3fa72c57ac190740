package images

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// moduleELF returns a minimal ELF relocatable file, as kernel modules are,
// whose .modinfo section holds modinfo.
func moduleELF(modinfo string) []byte {
	const shstr = "\x00.modinfo\x00.shstrtab\x00" // names at 1 and 10
	infoOff := uint64(64)                         // after the ELF header
	strOff := infoOff + uint64(len(modinfo))
	hdr := elf.Header64{Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: strOff + uint64(len(shstr)), Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, hdr)
	b.WriteString(modinfo)
	b.WriteString(shstr)
	binary.Write(&b, binary.LittleEndian, sections)
	return b.Bytes()
}

// fakeModuleFor returns the module at path rel built for kernel release,
// as its .modinfo says: a description naming it, and the vermagic.
func fakeModuleFor(rel, release string) []byte {
	return moduleELF("description=module " + rel + "\x00vermagic=" + release + " SMP preempt mod_unload modversions \x00")
}

// fakeModule is the module rel of fakeModules.
func fakeModule(rel string) []byte { return fakeModuleFor(rel, "6.1.0-test") }

func TestModuleRelease(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    string
		wantErr string
	}{
		{"module", fakeModuleFor("x.ko", "6.1.0-57-amd64"), "6.1.0-57-amd64", ""},
		{"vermagic first", moduleELF("vermagic=6.1.0-57-arm64 SMP\x00license=GPL\x00"), "6.1.0-57-arm64", ""},
		{"not ELF", []byte("module x"), "", "not an ELF file"},
		{"no vermagic", moduleELF("license=GPL\x00"), "", "no vermagic"},
		{"empty vermagic", moduleELF("vermagic=\x00"), "", "names no kernel release"},
		{"hostile vermagic", moduleELF("vermagic=\x1b[2J\x00"), "", "names no kernel release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := moduleRelease(tt.data)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("got %q, %v, want %q, error %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Regression: 'paddock image initrd' took a modules folder not named after
// the kernel's version (lib/modules/6.1.0-test-copy holding the modules of
// 6.1.0-test), put the modules under that name, and the device then failed
// at boot with "partitions not found": init looks in lib/modules/$(uname
// -r) and loaded no disk driver. The build must refuse it, saying why and
// what to pass instead.
func TestBuildInitramfsWrongModulesFolder(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	testutil.WriteFileMode(t, bin, "#!paddock", 0o755)
	out := filepath.Join(dir, "initrd.img")
	mods := fakeModulesFor(t, "6.1.0-test-copy", "6.1.0-test")
	err := BuildInitramfs(InitramfsOptions{Paddock: bin, ModulesDir: mods, Output: out})
	if err == nil {
		t.Fatal("got no error for a modules folder named after another kernel")
	}
	for _, want := range []string{"are for kernel 6.1.0-test", "named 6.1.0-test-copy", "lib/modules/6.1.0-test", "give --modules"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("got a multi-line error %q", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written despite the error (%v)", out, err)
	}
	// The same modules in a folder named after their kernel build.
	good := fakeModulesFor(t, "6.1.0-test", "6.1.0-test")
	if err := BuildInitramfs(InitramfsOptions{Paddock: bin, ModulesDir: good, Output: out}); err != nil {
		t.Errorf("the right folder: %v", err)
	}
}

// FuzzModuleRelease feeds moduleRelease arbitrary files: it must not
// panic, and a release it returns is one an error may name. Seeds are in
// testdata/fuzz/FuzzModuleRelease.
func FuzzModuleRelease(f *testing.F) {
	f.Add(fakeModuleFor("x.ko", "6.1.0-57-amd64"))
	f.Add(moduleELF("license=GPL\x00"))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		release, err := moduleRelease(data)
		if err == nil && !validRelease(release) {
			t.Fatalf("got release %q, which is not one", release)
		}
	})
}
