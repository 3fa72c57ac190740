package images

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/images/imagestest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/pack"
)

// testGadget is the doc.go layout at small sizes.
const testGadget = `volumes:
  test:
    schema: gpt
    structures:
      - {name: boot, role: system-boot, size: 34M, content: [{source: extra/config.txt, target: config.txt}]}
      - {name: bootenv, role: system-bootenv, size: 1M}
      - {name: base-a, role: system-base, size: 8M}
      - {name: base-b, role: system-base, size: 8M}
      - {name: data, role: system-data, size: 32M}
`

// testApp packs and signs (with the root key itself) a small app.
func testApp(t *testing.T, dir, arch string, key *keys.PrivateKey) string {
	t.Helper()
	tree := filepath.Join(dir, "hello")
	testutil.WriteFileMode(t, filepath.Join(tree, "meta/app.yaml"), "name: hello\nversion: \"1.0\"\napps:\n  hello:\n    command: bin/hello\n", 0o755)
	testutil.WriteFileMode(t, filepath.Join(tree, "bin/hello"), "#!/bin/sh\necho hello\n", 0o755)
	pdk := filepath.Join(dir, "hello_1.0.pdk")
	if _, err := pack.Pack(tree, pdk); err != nil {
		t.Fatal(err)
	}
	size, sum, err := fileDigest(pdk)
	if err != nil {
		t.Fatal(err)
	}
	rev := asserttest.Revision(t, key, "hello", func(r *assert.AppRevision) {
		r.Revision, r.Arch, r.Size, r.SHA256, r.Timestamp = 3, arch, size, sum, time.Now().Add(-time.Hour)
	})
	testutil.WriteFile(t, pdk+".assert", string(rev))
	return pdk
}

func testDiskOptions(t *testing.T) (DiskOptions, *keys.PrivateKey) {
	t.Helper()
	bo, key := testBaseOptions(t)
	b, err := BuildBase(bo)
	if err != nil {
		t.Fatal(err)
	}
	r := b.Revision(bo.Arch)
	r.Revision, r.Timestamp = 1, time.Now().Add(-time.Hour)
	a, err := assert.SignBaseRevision(r, key)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, bo.Output+".assert", string(a.Encode()))
	dir := t.TempDir()
	files := map[string]string{
		"gadget/gadget.yaml":      testGadget,
		"gadget/meta/app.yaml":    "name: test\nversion: \"1\"\ntype: gadget\n",
		"gadget/extra/config.txt": "console=ttyS0\n",
		"vmlinuz":                 strings.Repeat("kernel", 1000),
		"initrd.img":              strings.Repeat("initrd", 1000),
	}
	testutil.WriteTree(t, dir, files)
	return DiskOptions{
		Gadget: filepath.Join(dir, "gadget"), Base: bo.Output, Arch: bo.Arch,
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"),
		Apps:   []string{testApp(t, dir, bo.Arch, key)},
		Output: filepath.Join(dir, "disk.img"),
	}, key
}

func TestBuildDisk(t *testing.T) {
	o, _ := testDiskOptions(t)
	var progress bytes.Buffer
	o.Progress = &progress
	if err := BuildDisk(o); err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	d, table := imagestest.Open(t, o.Output)
	var names []string
	for _, p := range table.Partitions {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, " "), "boot bootenv base-a base-b data"; got != want {
		t.Fatalf("got partitions %s, want %s", got, want)
	}
	if table.Partitions[0].Start != 2048 || table.Partitions[0].Type != gpt.EFISystemPartition {
		t.Errorf("got boot partition at sector %d of type %s, want 2048, ESP", table.Partitions[0].Start, table.Partitions[0].Type)
	}

	// boot: FAT32 with the kernel, the initramfs and the gadget's file.
	fat, err := d.GetFilesystem(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"/vmlinuz": o.Kernel, "/initrd.img": o.Initrd, "/config.txt": filepath.Join(o.Gadget, "extra/config.txt")} {
		got := readFSFile(t, fat, name)
		want, _ := os.ReadFile(src)
		if !bytes.Equal(got, want) {
			t.Errorf("boot %s: got %d bytes, want %d", name, len(got), len(want))
		}
	}

	// bootenv: the initial record, slot a.
	envFile := filepath.Join(t.TempDir(), "bootenv")
	partToFile(t, d, 2, envFile)
	env, err := boot.Read(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if env.Slot != "a" || env.Try != "" {
		t.Errorf("got bootenv %+v, want slot a", env)
	}
	if raw, _ := os.ReadFile(envFile); !bytes.HasPrefix(raw, []byte("paddock-bootenv-1\n")) {
		t.Errorf("bootenv does not start with a record")
	}

	// base-a holds the base; base-b is empty.
	baseFile := filepath.Join(t.TempDir(), "base-a")
	partToFile(t, d, 3, baseFile)
	base, _ := os.ReadFile(o.Base)
	if got, _ := os.ReadFile(baseFile); !bytes.Equal(got[:len(base)], base) {
		t.Errorf("base-a does not hold the base")
	}
	partToFile(t, d, 4, baseFile)
	if got, _ := os.ReadFile(baseFile); bytes.Count(got, []byte{0}) != len(got) {
		t.Errorf("base-b is not empty")
	}

	// data: ext4 with the seeded app.
	data, err := d.GetFilesystem(5)
	if err != nil {
		t.Fatal(err)
	}
	var seed Seed
	if err := json.Unmarshal(readFSFile(t, data, SeedFile), &seed); err != nil {
		t.Fatal(err)
	}
	if len(seed.Apps) != 1 || seed.Apps[0].Name != "hello" || seed.Apps[0].Revision != 3 || seed.Apps[0].Publisher != "root" {
		t.Fatalf("got seed %+v, want hello revision 3 by root", seed)
	}
	pdk, _ := os.ReadFile(o.Apps[0])
	if got := readFSFile(t, data, "paddock/packages/hello_3.pdk"); !bytes.Equal(got, pdk) {
		t.Errorf("seeded package differs from %s", o.Apps[0])
	}
	if got := readFSFile(t, data, "paddock/assertions/hello_3.assert"); len(got) == 0 {
		t.Errorf("seeded assertion is empty")
	}
	baseAssert, _ := os.ReadFile(o.Base + ".assert")
	if got := readFSFile(t, data, "paddock/boot/base-a.assert"); !bytes.Equal(got, baseAssert) {
		t.Errorf("paddock/boot/base-a.assert does not hold the base's assertion")
	}
	for _, dir := range []string{"paddock/data/hello/3", "paddock/data/hello/common"} {
		if fi, err := data.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("data dir %s: %v", dir, err)
		}
	}
	checkExt4(t, d, 5)
	checkSgdisk(t, o.Output)
}

// checkExt4 runs e2fsck on the partition; without it the test skips (after
// its other checks), so that 'make fresh' notices a missing e2fsprogs.
func checkExt4(t *testing.T, d interface {
	ReadPartitionContents(int, io.Writer) (int64, error)
}, index int) {
	t.Helper()
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Skip("needs e2fsck to check the ext4 data partition (make deps installs e2fsprogs)")
	}
	f, err := os.CreateTemp(t.TempDir(), "data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadPartitionContents(index, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("e2fsck", "-fn", f.Name()).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
}

// checkSgdisk checks the partition table with sgdisk; without it the test
// skips (after its other checks), so that 'make fresh' notices a missing gdisk.
func checkSgdisk(t *testing.T, img string) {
	t.Helper()
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Skip("needs sgdisk to check the partition table (make deps installs gdisk)")
	}
	out, err := exec.Command("sgdisk", "-v", "-p", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk: %v\n%s", err, out)
	}
	for _, name := range []string{"boot", "bootenv", "base-a", "base-b", "data"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("sgdisk does not list %s:\n%s", name, out)
		}
	}
}

func readFSFile(t *testing.T, fs interface {
	ReadFile(string) ([]byte, error)
}, name string) []byte {
	t.Helper()
	data, err := fs.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return data
}

func partToFile(t *testing.T, d interface {
	ReadPartitionContents(int, io.Writer) (int64, error)
}, index int, name string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := d.ReadPartitionContents(index, f); err != nil {
		t.Fatal(err)
	}
}

func TestBuildDiskRefusesUntrustedApp(t *testing.T) {
	o, _ := testDiskOptions(t)
	other := asserttest.Key(t, "other")
	o.Apps = []string{testApp(t, t.TempDir(), o.Arch, other)}
	err := BuildDisk(o)
	if err == nil || !strings.Contains(err.Error(), "cannot seed") {
		t.Errorf("got %v, want an error about the untrusted app", err)
	}
	if _, err := os.Stat(o.Output); err == nil {
		t.Errorf("a disk image was left behind")
	}
}

func TestBuildDiskRefusesWrongArch(t *testing.T) {
	o, key := testDiskOptions(t)
	o.Apps = []string{testApp(t, t.TempDir(), "armhf", key)}
	if err := BuildDisk(o); err == nil || !strings.Contains(err.Error(), "built for armhf") {
		t.Errorf("got %v, want an error about the architecture", err)
	}
}

func TestBuildDiskRefusesBaseNotItsAssertion(t *testing.T) {
	o, _ := testDiskOptions(t)
	f, err := os.OpenFile(o.Base, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := BuildDisk(o); err == nil || !strings.Contains(err.Error(), "its base-revision says") {
		t.Errorf("got %v, want an error about the base's sha256", err)
	}
}
