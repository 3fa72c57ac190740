package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoKernel is returned by FindKernel when no guest kernel is cached.
var ErrNoKernel = errors.New("needs a guest kernel (make deps fetches it)")

// CacheDir returns where downloaded guest kernels are kept: $PADDOCK_CACHE,
// else the .cache folder of the paddock checkout that holds the current
// directory (where scripts/kernel.sh puts them), else the user's cache
// folder's paddock/.
func CacheDir() string {
	if d := os.Getenv("PADDOCK_CACHE"); d != "" {
		return d
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && bytes.HasPrefix(mod, []byte("module paddock.dev/paddock\n")) {
				return filepath.Join(dir, ".cache")
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "paddock")
	}
	return ".cache"
}

// FindKernel returns the cached guest kernel for arch, as scripts/kernel.sh
// lays it out in CacheDir()/kernels/ARCH/: on amd64 boot/vmlinux-KVER (an
// ELF for PVH direct boot, twice as fast to boot) or a plain vmlinux, else
// boot/vmlinuz-KVER. KVER is the one named in .complete, or the highest.
func FindKernel(arch Arch) (string, error) {
	if arch == "" {
		arch = AMD64
	}
	dir := filepath.Join(CacheDir(), "kernels", string(arch))
	var names []string
	if arch == AMD64 {
		names = append(names, "boot/vmlinux-", "vmlinux")
	}
	names = append(names, "boot/vmlinuz-", "vmlinuz")
	kver := ""
	if b, err := os.ReadFile(filepath.Join(dir, ".complete")); err == nil {
		kver = strings.TrimSpace(string(b))
	}
	for _, n := range names {
		if p := findFile(dir, n, kver); p != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none in %s", ErrNoKernel, dir)
}

// findFile returns dir/name if it exists; a name ending in "-" is a prefix
// completed by kver, or else by the highest version found.
func findFile(dir, name, kver string) string {
	if !strings.HasSuffix(name, "-") {
		return existing(filepath.Join(dir, name))
	}
	if kver != "" {
		if p := existing(filepath.Join(dir, name+kver)); p != "" {
			return p
		}
	}
	m, _ := filepath.Glob(filepath.Join(dir, name+"*"))
	sort.Strings(m)
	for i := len(m) - 1; i >= 0; i-- {
		if p := existing(m[i]); p != "" {
			return p
		}
	}
	return ""
}

// existing returns p if it is a regular file.
func existing(p string) string {
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// bootFiles returns the kernel and initrd to boot disk with, when the
// command line names none: files next to the image (disk.img ->
// disk.vmlinux or disk.vmlinuz, and disk.initrd.img), else the cached
// kernel (FindKernel) and CacheDir()/kernels/ARCH/initrd.img.
func bootFiles(arch Arch, disk, kernel, initrd string) (string, string, error) {
	base := strings.TrimSuffix(disk, filepath.Ext(disk))
	if kernel == "" && disk != "" {
		kernel = existing(base + ".vmlinux")
		if kernel == "" {
			kernel = existing(base + ".vmlinuz")
		}
	}
	if kernel == "" {
		k, err := FindKernel(arch)
		if err != nil {
			return "", "", fmt.Errorf("cannot find a kernel to boot (give --kernel, or put %s.vmlinux next to the image): %w", filepath.Base(base), err)
		}
		kernel = k
	}
	if initrd == "" && disk != "" {
		initrd = existing(base + ".initrd.img")
	}
	if initrd == "" {
		initrd = existing(filepath.Join(CacheDir(), "kernels", string(arch), "initrd.img"))
	}
	if initrd == "" {
		return "", "", fmt.Errorf("cannot find an initramfs to boot (give --initrd, or put %s.initrd.img next to the image)", filepath.Base(base))
	}
	return kernel, initrd, nil
}
