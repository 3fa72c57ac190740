package images

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/baseupdate"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/verity"
)

// hostArch returns the image architecture of the host, or skips.
func hostArch(t *testing.T) string {
	t.Helper()
	if _, ok := elfMachines[runtime.GOARCH]; !ok {
		t.Skipf("no base images for %s hosts", runtime.GOARCH)
	}
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		testutil.NeedCommand(t, tool, "squashfs-tools")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("/bin/busybox is missing (busybox-static)")
	}
	return runtime.GOARCH
}

// testBaseOptions returns options for a base with a dummy paddock binary
// (a copy of busybox: any ELF file of the right machine does) and one
// trusted key, and the key.
func testBaseOptions(t *testing.T) (BaseOptions, *keys.PrivateKey) {
	t.Helper()
	arch := hostArch(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "paddock")
	if err := copyFile("/bin/busybox", bin, 0o755); err != nil {
		t.Fatal(err)
	}
	key := asserttest.Key(t, "root")
	armored, err := key.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "root.asc")
	testutil.WriteFile(t, keyFile, string(armored))
	o := BaseOptions{Arch: arch, Paddock: bin, TrustedKeys: []string{keyFile}, Output: filepath.Join(dir, "base.pdk")}
	if _, err := os.Stat("/sbin/apparmor_parser"); err != nil {
		o.NoApparmor = true
	}
	return o, key
}

func TestBuildBase(t *testing.T) {
	o, key := testBaseOptions(t)
	o.AgentConfig = testutil.TempFile(t, "agent.yaml", "brokers: [tcp://10.0.2.100:1883]\ndevice-id: dev1\n")
	m, err := BuildBase(o)
	if err != nil {
		t.Fatal(err)
	}
	checkSlotImage(t, o.Output, m.Image)
	if m.Type != "base" || m.Name != "paddock-base" {
		t.Errorf("got manifest %s of type %s, want paddock-base of type base", m.Name, m.Type)
	}
	out, err := exec.Command("unsquashfs", "-lls", "-d", "", o.Output).Output()
	if err != nil {
		t.Fatal(err)
	}
	listing := string(out)
	for _, want := range []string{
		"-rwxr-xr-x root/root", " /usr/bin/paddock", " /bin/busybox", " /bin/sh -> busybox", " /bin/ls -> busybox",
		" /etc/paddock-base", " /etc/hostname", " /etc/paddock/agent.yaml", " /etc/passwd", " /etc/group", " /meta/app.yaml",
		" /etc/paddock/trusted/" + key.Public().Fingerprint() + ".asc",
		" /proc", " /sys", " /dev", " /run", " /data", " /var/lib/paddock", " /apps",
		"drwxrwxrwt root/root", // /tmp
		"drwxr-xr-x root/root", // the root: not MkdirTemp's 0700
		" /etc/apparmor/parser.conf",
		" /etc/resolv.conf -> /run/paddock-net/resolv.conf", // the agent writes it (agent/netmgr)
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("base listing lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("listing:\n%s", listing)
	}
	if strings.Contains(listing, " /bin/init ->") || strings.Contains(listing, " /bin/paddock ->") {
		t.Errorf("busybox links over paddock or init")
	}
	if !o.NoApparmor {
		for _, want := range []string{" /sbin/apparmor_parser", "libc.so.6"} {
			if !strings.Contains(listing, want) {
				t.Errorf("base listing lacks %q", want)
			}
		}
	}
	if first := strings.SplitN(listing, "\n", 2)[0]; !strings.HasPrefix(first, "drwxr-xr-x root/root") {
		t.Errorf("got root directory %q, want drwxr-xr-x root/root", first)
	}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		if !strings.Contains(line, " 1970-01-01 00:00 ") {
			t.Errorf("got a time other than the epoch: %s", line)
		}
	}

	// Reproducible: a second build gives the same bytes.
	first, _ := os.ReadFile(o.Output)
	o.Output += ".2"
	if _, err := BuildBase(o); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(o.Output)
	if !bytes.Equal(first, second) {
		t.Errorf("two builds differ")
	}
}

// TestBaseMount mounts a base read-only, as the boot stage does, and
// checks that the tree works: the shell runs from it (chroot).
func TestBaseMount(t *testing.T) {
	testutil.NeedRoot(t, "mount a base")
	o, _ := testBaseOptions(t)
	if _, err := BuildBase(o); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop,ro", "-t", "squashfs", o.Output, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount SquashFS here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	for _, p := range []string{"usr/bin/paddock", "bin/busybox", "etc/paddock-base", "meta/app.yaml", "var/lib/paddock", "apps"} {
		if _, err := os.Stat(filepath.Join(mnt, p)); err != nil {
			t.Errorf("mounted base: %v", err)
		}
	}
	out, err := exec.Command("chroot", mnt, "/bin/sh", "-c", "cat /etc/hostname; ls /etc/paddock/trusted | wc -l").CombinedOutput()
	if err != nil {
		t.Fatalf("sh in the base: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "paddock" || got[1] != "1" {
		t.Errorf("got %q from the base's shell, want hostname paddock and 1 key", out)
	}
	if !o.NoApparmor {
		out, err := exec.Command("chroot", mnt, "/sbin/apparmor_parser", "--version").CombinedOutput()
		if err != nil {
			t.Errorf("apparmor_parser in the base: %v: %s", err, out)
		}
	}
}

func TestBuildBaseWrongArch(t *testing.T) {
	o, _ := testBaseOptions(t)
	if o.Arch == "amd64" {
		o.Arch = "arm64"
	} else {
		o.Arch = "amd64"
	}
	if _, err := BuildBase(o); err == nil || !strings.Contains(err.Error(), "is built for") {
		t.Errorf("got %v, want an error about the binary's architecture", err)
	}
}

// checkSlotImage checks that the slot image is the SquashFS padded to
// whole blocks, then the hash tree of that data, as img describes it.
func checkSlotImage(t *testing.T, path string, img *baseupdate.Image) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != img.Size || img.Size != img.DataSize+verity.TreeSize(img.DataSize) {
		t.Fatalf("got an image of %d bytes (described as %d, data %d), want the data and its tree", len(data), img.Size, img.DataSize)
	}
	salt, _ := hex.DecodeString(img.Salt)
	tree, err := verity.Build(bytes.NewReader(data), img.DataSize, salt)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(tree.Root); got != img.RootHash {
		t.Errorf("got root hash %s, want %s", got, img.RootHash)
	}
	if !bytes.Equal(data[img.DataSize:], tree.Bytes()) {
		t.Errorf("the image does not end with the hash tree of its data")
	}
	sum, chunks, err := baseupdate.HashChunks(bytes.NewReader(data), img.Size, img.ChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	if sum != img.SHA256 || strings.Join(chunks, ",") != strings.Join(img.Chunks, ",") {
		t.Errorf("got sha256 %s and %d chunks, want %s and %d", sum, len(chunks), img.SHA256, len(img.Chunks))
	}
}
