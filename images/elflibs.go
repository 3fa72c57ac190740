package images

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// libDirs are where the dynamic loader finds libraries, per machine,
// Debian's multiarch directories first.
var libDirs = map[elf.Machine][]string{
	elf.EM_X86_64:  {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"},
	elf.EM_AARCH64: {"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"},
	elf.EM_ARM:     {"/lib/arm-linux-gnueabihf", "/usr/lib/arm-linux-gnueabihf", "/lib", "/usr/lib"},
}

// sharedLibs lists what the dynamic executable bin needs to run: its
// interpreter and, recursively, the libraries it and they name, as paths
// inside sysroot ("/" for the host; a folder where an architecture's
// packages were unpacked for another). Unlike ldd, it runs nothing, so it
// works for binaries of any architecture. A static binary needs nothing.
func sharedLibs(bin, sysroot string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var visit func(file string) error
	visit = func(file string) error {
		f, err := elf.Open(filepath.Join(sysroot, file))
		if err != nil {
			return err
		}
		defer f.Close()
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if interp := interpreter(f); interp != "" && !seen[interp] {
			seen[interp] = true
			out = append(out, interp)
		}
		for _, lib := range needed {
			p, err := findLib(lib, f.Machine, sysroot)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", file, lib, err)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if err := visit(p); err != nil {
				return err
			}
		}
		return nil
	}
	return out, visit(bin)
}

// interpreter returns the PT_INTERP path of f, or "".
func interpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil && len(b) > 0 {
				return string(b[:len(b)-1]) // NUL-terminated
			}
		}
	}
	return ""
}

// findLib looks lib up in the loader's directories for machine under sysroot.
func findLib(lib string, machine elf.Machine, sysroot string) (string, error) {
	if path.IsAbs(lib) {
		return lib, nil
	}
	for _, dir := range libDirs[machine] {
		p := path.Join(dir, lib)
		if _, err := os.Stat(filepath.Join(sysroot, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v under %s", libDirs[machine], sysroot)
}
