package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// DefaultModules are the kernel modules the initramfs loads (with their
// dependencies) so that 'paddock init' can mount a virtio disk with a
// SquashFS base, an ext4 data partition, a vfat boot partition and
// overlays. Modules a kernel has built in, or lacks, are skipped: the
// arm64 Debian kernel has virtio built in.
var DefaultModules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
	"virtio_mmio", "virtio_blk", "squashfs", "loop",
	"crc32c_generic", "jbd2", "mbcache", "crc16", "ext4",
	// The verified base (dm-verity) and the watchdog of a tried boot:
	// QEMU's i6300esb, softdog when the machine has no other.
	"dm_mod", "dm_verity", "i6300esb", "softdog",
	// Not for booting, so left out: vfat and its charsets (the boot
	// partition is for boot loaders), overlay, and crc32c-intel (it fails
	// under TCG; crc32c_generic serves). Each module costs boot time.
}

// ModuleListName is the file in lib/modules/KVER that lists the modules
// 'paddock init' loads, one name a line, in load order.
const ModuleListName = "paddock.modules"

// moduleDB is what the image builder needs of a kernel's modules
// directory: where each module is and what it depends on.
type moduleDB struct {
	dir     string              // lib/modules/KVER
	path    map[string]string   // normalized name → path relative to dir
	deps    map[string][]string // relative path → dependencies as modules.dep lists them
	order   []string            // relative paths in modules.dep order
	builtin map[string]bool     // normalized names
}

// moduleName returns the normalized name of a module file or name:
// "kernel/fs/nls/nls_iso8859-1.ko.xz" → "nls_iso8859_1".
func moduleName(s string) string {
	s = path.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// normalPath returns the path a module gets in the initramfs: its file
// named by its normalized name, "kernel/fs/nls/nls_iso8859_1.ko", and
// uncompressed. u-root's kmodule finds a module by name spelled all with
// dashes or all with underscores, so a file named nls_iso8859-1.ko could
// not be probed; and a module decompressed at build time loads faster than
// one the guest must inflate (a third of a second under TCG).
func normalPath(rel string) string {
	base := path.Base(rel)
	ext := ""
	if i := strings.Index(base, ".ko"); i >= 0 {
		ext = strings.TrimSuffix(base[i:], ".xz")
	}
	return path.Join(path.Dir(rel), moduleName(rel)+ext)
}

// readModule reads a module file, decompressing a .ko.xz.
func readModule(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil || !strings.HasSuffix(file, ".xz") {
		return data, err
	}
	r, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress %s: %w", file, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress %s: %w", file, err)
	}
	return out, nil
}

func readModuleDB(dir string) (*moduleDB, error) {
	db := &moduleDB{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("cannot read kernel modules: %w (run 'depmod -b ROOT KVER', or scripts/kernel.sh)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		db.path[moduleName(mod)] = mod
		db.deps[mod] = strings.Fields(deps)
		db.order = append(db.order, mod)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read kernel modules: %w", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(data)) {
			db.builtin[moduleName(line)] = true
		}
	}
	return db, nil
}

// resolve returns the paths (relative to db.dir) of the modules in names
// and of their dependencies, in load order: each module after what it
// depends on. Built-in and missing modules are left out and returned in
// skipped.
func (db *moduleDB) resolve(names []string) (load, skipped []string) {
	seen := make(map[string]bool)
	var add func(rel string)
	add = func(rel string) {
		if seen[rel] {
			return
		}
		seen[rel] = true
		// modules.dep lists the dependencies that must load last first.
		deps := db.deps[rel]
		for i := len(deps) - 1; i >= 0; i-- {
			add(deps[i])
		}
		load = append(load, rel)
	}
	for _, name := range names {
		rel, ok := db.path[moduleName(name)]
		if !ok {
			skipped = append(skipped, name)
			continue
		}
		add(rel)
	}
	return load, skipped
}

// filteredFiles returns the modules.* index files for an initramfs that
// holds only the modules in load: modules.dep, modules.alias and
// modules.order cut down to them (with the paths of normalPath),
// modules.builtin and modules.softdep as they are.
func (db *moduleDB) filteredFiles(load []string) (map[string][]byte, error) {
	keep := make(map[string]bool)
	names := make(map[string]bool)
	for _, rel := range load {
		keep[rel] = true
		names[moduleName(rel)] = true
	}
	out := make(map[string][]byte)
	var dep strings.Builder
	for _, rel := range db.order {
		if keep[rel] {
			fmt.Fprintf(&dep, "%s:", normalPath(rel))
			for _, d := range db.deps[rel] {
				fmt.Fprintf(&dep, " %s", normalPath(d))
			}
			dep.WriteByte('\n')
		}
	}
	out["modules.dep"] = []byte(dep.String())
	filter := func(file string, keepLine func(fields []string) bool) error {
		data, err := os.ReadFile(filepath.Join(db.dir, file))
		if os.IsNotExist(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("cannot read kernel modules: %w", err)
		}
		var b strings.Builder
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 && keepLine(f) {
				if file == "modules.order" {
					line = normalPath(f[0]) + "\n"
				}
				b.WriteString(line)
			}
		}
		out[file] = []byte(b.String())
		return nil
	}
	if err := filter("modules.alias", func(f []string) bool { return len(f) == 3 && f[0] == "alias" && names[moduleName(f[2])] }); err != nil {
		return nil, err
	}
	if err := filter("modules.order", func(f []string) bool { return names[moduleName(f[0])] }); err != nil {
		return nil, err
	}
	for _, file := range []string{"modules.builtin", "modules.softdep"} {
		if err := filter(file, func([]string) bool { return true }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleRelease returns the kernel release a module was built for: the
// first word of the vermagic in its .modinfo section ("6.1.0-57-amd64 SMP
// preempt mod_unload modversions"). The kernel loads only modules whose
// vermagic matches it, and looks for them in lib/modules/RELEASE.
func moduleRelease(data []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", errors.New("not an ELF file")
	}
	sec := f.Section(".modinfo")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return "", errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return "", errors.New("cannot read its .modinfo section")
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("vermagic=")); ok {
			if release, _, _ := strings.Cut(string(v), " "); validRelease(release) {
				return release, nil
			}
			return "", errors.New("its vermagic names no kernel release")
		}
	}
	return "", errors.New("no vermagic in its .modinfo section")
}

// validRelease reports whether s looks like a kernel release (uname -r),
// so that it can be named in an error.
func validRelease(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+-~", c)) {
			return false
		}
	}
	return true
}

// checkRelease checks that the module rel (data, decompressed) was built
// for the kernel release the modules folder is named after: init loads the
// modules from lib/modules/$(uname -r), and an initramfs whose folder is
// named otherwise boots without its disk drivers.
func checkRelease(db *moduleDB, rel string, data []byte) error {
	folder := filepath.Base(db.dir)
	release, err := moduleRelease(data)
	if err != nil {
		return fmt.Errorf("cannot tell which kernel %s is for: %v (is %s a kernel's lib/modules/KVER folder?)", rel, err, db.dir)
	}
	if release != folder {
		return fmt.Errorf("the modules in %s are for kernel %s (the vermagic of %s), but the folder is named %s: "+
			"the kernel looks for them in lib/modules/%s, so the device would boot without them and not find its disk "+
			"(give --modules the folder named after the kernel's version, lib/modules/%s, as scripts/kernel.sh prints it)",
			db.dir, release, rel, folder, release, release)
	}
	return nil
}
