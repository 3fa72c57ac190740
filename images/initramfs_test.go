package images

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert/asserttest"
)

// fakeModules makes a lib/modules/KVER tree with modules.dep in the format
// depmod writes: each module, then what it needs, the last to load first.
func fakeModules(t *testing.T) string {
	t.Helper()
	return fakeModulesFor(t, "6.1.0-test", "6.1.0-test")
}

// fakeModulesFor makes the tree of fakeModules in a folder named folder,
// with modules built for kernel release (fakeModule).
func fakeModulesFor(t *testing.T, folder, release string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib/modules", folder)
	dep := `kernel/drivers/virtio/virtio_ring.ko.xz:
kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/fs/nls/nls_iso8859-1.ko.xz:
kernel/drivers/net/unused.ko.xz:
`
	files := map[string]string{
		"modules.dep":     dep,
		"modules.builtin": "kernel/fs/squashfs/squashfs.ko\n",
		"modules.alias":   "alias virtio:d00000002v* virtio_blk\nalias pci:v1234* unused\n",
		"modules.order":   "kernel/fs/ext4/ext4.ko\nkernel/drivers/net/unused.ko\n",
	}
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		var b bytes.Buffer
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(signed(fakeModuleFor(strings.TrimSuffix(mod, ".xz"), release), 8, 2)) // as Debian ships them
		w.Close()
		files[mod] = b.String()
	}
	testutil.WriteTree(t, dir, files)
	return dir
}

// readInitramfs returns the records of a newc archive by name,
// with their contents, and the names in archive order.
func readInitramfs(t *testing.T, file string) (map[string]cpio.Record, map[string]string, []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]cpio.Record)
	contents := make(map[string]string)
	var names []string
	for _, r := range recs {
		byName[r.Name] = r
		names = append(names, r.Name)
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			data, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				t.Fatal(err)
			}
			contents[r.Name] = string(data)
		}
	}
	return byName, contents, names
}

func TestBuildInitramfs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	testutil.WriteFileMode(t, bin, "#!paddock", 0o755)
	mods := fakeModules(t)
	out := filepath.Join(dir, "initrd.img")
	var logged []string
	opts := InitramfsOptions{Paddock: bin, ModulesDir: mods, Output: out,
		Modules: []string{"virtio_blk", "ext4", "nls_iso8859-1", "squashfs", "missing"},
		Logf:    func(f string, a ...any) { logged = append(logged, f) }}
	if err := BuildInitramfs(opts); err != nil {
		t.Fatal(err)
	}
	recs, contents, names := readInitramfs(t, out)
	if got := contents["init"]; got != "#!paddock" {
		t.Errorf("got /init %q, want the paddock binary", got)
	}
	if m := recs["init"].Mode; m != cpio.S_IFREG|0o755 {
		t.Errorf("got /init mode %#o, want %#o", m, cpio.S_IFREG|0o755)
	}
	if r := recs["dev/console"]; r.Mode&cpio.S_IFMT != cpio.S_IFCHR || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("got dev/console %v, want char 5,1", r.Info)
	}
	if r := recs["dev/null"]; r.Mode&cpio.S_IFMT != cpio.S_IFCHR || r.Rmajor != 1 || r.Rminor != 3 {
		t.Errorf("got dev/null %v, want char 1,3", r.Info)
	}
	base := "lib/modules/6.1.0-test/"
	wantOrder := []string{"virtio_ring", "virtio", "virtio_blk", "crc16", "mbcache", "jbd2", "ext4", "nls_iso8859_1"}
	var gotOrder []string
	for _, line := range strings.Split(contents[base+ModuleListName], "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			gotOrder = append(gotOrder, line)
		}
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Errorf("got load order %v, want %v", gotOrder, wantOrder)
	}
	// Modules are decompressed at build time, and their signatures
	// dropped: the guest loads them as they are, without hashing them.
	for _, m := range []string{"kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/drivers/virtio/virtio_ring.ko"} {
		if contents[base+m] != string(fakeModule(m)) {
			t.Errorf("module %s missing or wrong: %q", m, contents[base+m])
		}
	}
	// Regression: kmodule could not find nls_iso8859-1.ko.xz by any name.
	if _, ok := recs[base+"kernel/fs/nls/nls_iso8859_1.ko"]; !ok {
		t.Errorf("nls_iso8859-1 is not in the archive as nls_iso8859_1.ko")
	}
	if _, ok := recs[base+"kernel/drivers/net/unused.ko"]; ok {
		t.Errorf("unused module is in the archive")
	}
	if dep := contents[base+"modules.dep"]; strings.Contains(dep, "unused") || !strings.Contains(dep, "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko") {
		t.Errorf("got modules.dep %q, want only the included modules", dep)
	}
	if a := contents[base+"modules.alias"]; a != "alias virtio:d00000002v* virtio_blk\n" {
		t.Errorf("got modules.alias %q", a)
	}
	if _, ok := contents[base+"modules.builtin"]; !ok {
		t.Errorf("modules.builtin missing")
	}
	// squashfs is built in here, and missing is missing: one line says so.
	if len(logged) != 1 {
		t.Errorf("got %d log lines about skipped modules, want 1", len(logged))
	}
	if !slices.IsSorted(names[:len(names)-1]) { // the trailer is last
		t.Errorf("records not sorted: %v", names)
	}
	for _, r := range recs {
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("record %s has mtime %d uid %d gid %d, want zeros", r.Name, r.MTime, r.UID, r.GID)
		}
	}

	// Reproducible: a second build gives the same bytes.
	out2 := filepath.Join(dir, "initrd2.img")
	opts.Output = out2
	if err := BuildInitramfs(opts); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds differ")
	}
}

// TestBuildInitramfsDebianKernel builds the initramfs from the kernel
// scripts/kernel.sh unpacks; set PADDOCK_KERNEL_MODULES to its modules=
// line to run it.
func TestBuildInitramfsDebianKernel(t *testing.T) {
	mods := os.Getenv("PADDOCK_KERNEL_MODULES")
	if mods == "" {
		t.Skip("PADDOCK_KERNEL_MODULES is not set (run scripts/kernel.sh amd64 DIR and set it to the modules= path)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	testutil.WriteFileMode(t, bin, "#!paddock", 0o755)
	out := filepath.Join(dir, "initrd.img")
	if err := BuildInitramfs(InitramfsOptions{Paddock: bin, ModulesDir: mods, Output: out, Logf: t.Logf}); err != nil {
		t.Fatal(err)
	}
	_, contents, _ := readInitramfs(t, out)
	list := contents[filepath.Join("lib/modules", filepath.Base(mods), ModuleListName)]
	// What the boot needs (DefaultModules leaves vfat, its charsets and
	// overlay out now: they are not for booting).
	for _, m := range []string{"virtio_blk", "squashfs", "loop", "ext4"} {
		if !slices.Contains(strings.Split(list, "\n"), m) {
			t.Errorf("%s not in %s:\n%s", m, ModuleListName, list)
		}
	}
	fi, _ := os.Stat(out)
	t.Logf("initramfs: %d bytes, modules:\n%s", fi.Size(), list)
}

func TestBuildInitramfsKeepModuleSignatures(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	testutil.WriteFileMode(t, bin, "#!paddock", 0o755)
	out := filepath.Join(dir, "initrd.img")
	opts := InitramfsOptions{Paddock: bin, ModulesDir: fakeModules(t), Output: out, Modules: []string{"ext4"}, KeepModuleSignatures: true}
	if err := BuildInitramfs(opts); err != nil {
		t.Fatal(err)
	}
	_, contents, _ := readInitramfs(t, out)
	m := "kernel/fs/ext4/ext4.ko"
	if got, want := contents["lib/modules/6.1.0-test/"+m], string(signed(fakeModule(m), 8, 2)); got != want {
		t.Errorf("got %q, want the module with its signature %q", got, want)
	}
}

// TestInitramfsTrustedKeys: --trust puts the device's root keys in the
// initramfs, where init checks the base's assertion against them before
// it mounts the base.
func TestInitramfsTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	testutil.WriteFileMode(t, bin, "#!paddock", 0o755)
	key := asserttest.Key(t, "root")
	armored, err := key.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "root.asc")
	testutil.WriteFile(t, keyFile, string(armored))
	out := filepath.Join(dir, "initrd.img")
	if err := BuildInitramfs(InitramfsOptions{Paddock: bin, Output: out, TrustedKeys: []string{keyFile}}); err != nil {
		t.Fatal(err)
	}
	_, contents, _ := readInitramfs(t, out)
	name := "etc/paddock/trusted/" + key.Public().Fingerprint() + ".asc"
	if contents[name] != string(armored) {
		t.Errorf("got %s %q, want the key", name, contents[name])
	}
	testutil.WriteFile(t, keyFile, "not a key")
	if err := BuildInitramfs(InitramfsOptions{Paddock: bin, Output: out, TrustedKeys: []string{keyFile}}); err == nil {
		t.Error("a file that is not a key: no error")
	}
}
