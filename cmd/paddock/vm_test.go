package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// guestKernel finds the Debian guest kernel that 'make deps' caches, or
// skips the test.
func guestKernel(t *testing.T) (vmlinux, vmlinuz, modules string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM")
	}
	testutil.NeedCommand(t, "qemu-system-x86_64", "qemu-system-x86")
	cache, err := filepath.Abs("../../.cache/kernels/amd64")
	if err != nil {
		t.Fatal(err)
	}
	find := func(pattern string) string {
		m, _ := filepath.Glob(filepath.Join(cache, pattern))
		if len(m) == 0 {
			t.Skipf("needs a guest kernel in %s (make deps fetches it)", cache)
		}
		return m[len(m)-1]
	}
	return find("boot/vmlinux-*"), find("boot/vmlinuz-*"), find("lib/modules/*")
}

// buildDisk builds the appliance's disk image disk.img in the work folder,
// as the README does: a base trusting root.asc (signed by root, revision
// 1), an initramfs with the guest kernel's modules that trusts root.asc
// too, so that init mounts the base through dm-verity (every VM test boots
// a verified base), and a disk from the example gadget with the guest
// kernel, seeded with apps (package files in the work folder). The base
// has the work folder's agent.yaml when there is one; the initramfs loads
// virtio_net, so that a guest given QEMU's network (a forward) has its
// interface.
func (d *device) buildDisk(vmlinuz, modules string, apps ...string) {
	d.t.Helper()
	base := []string{"image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", "base.img", "--key", "root", "--revision", "1"}
	if _, err := os.Stat(filepath.Join(d.work, "agent.yaml")); err == nil {
		base = append(base, "--agent-config", "agent.yaml")
	}
	d.ok(base...)
	d.ok("image", "initrd", "--modules", modules, "--paddock", binary, "--trust", "root.asc", "-o", "initrd.img", "--module", "virtio_net")
	args := []string{"image", "build", "--gadget", filepath.Join(examples, "gadget-amd64"), "--base", "base.img",
		"--kernel", vmlinuz, "--initrd", "initrd.img", "--arch", "amd64"}
	for _, app := range apps {
		args = append(args, "--app", app)
	}
	d.ok(append(args, "-o", "disk.img", "-q")...)
}

// pickDisks is a guest shell line that sets ASSERT to the one of /dev/vdb
// and /dev/vdc that holds assertions (they begin "type:") and PKG to the
// other. The kernel does not always name the extra disks in the order QEMU
// attaches them: a CI run read the base image as /dev/vdc ("cannot decode
// assertion 1 of bundle: header line 1: want \"name: value\"").
const pickDisks = `for d in /dev/vdb /dev/vdc; do if [ "$(head -c 5 $d)" = "type:" ]; then ASSERT=$d; else PKG=$d; fi; done`

// assertDisk writes the assertions of package pdk (in the work folder) to
// assert.disk, padded to whole sectors, for a guest to read from a disk of
// its own; it returns the length of the assertions.
func (d *device) assertDisk(pdk string) int {
	d.t.Helper()
	assertion := testutil.ReadFile(d.t, filepath.Join(d.work, pdk+".assert"))
	padded := assertion + strings.Repeat("\x00", (512-len(assertion)%512)%512)
	testutil.WriteFile(d.t, filepath.Join(d.work, "assert.disk"), padded)
	return len(assertion)
}

// TestApplianceInQEMU builds a device image (base, initramfs, disk from the
// example gadget, with the escape app seeded), boots it under QEMU and
// checks in the guest: the seeded app is installed, a signed app installs
// from a second disk and runs as its own user, and the kernel enforces the
// sandbox — seccomp answers EPERM, the cgroup v2 eBPF device program
// refuses a block device, and AppArmor denies a path its profile does not
// allow, logging it. The escape app runs as root (its delegation grants
// it), so that the owner bits do not stop it at the block device first.
// The guest has a network (a guest forward gives it QEMU's user-mode
// network; agent.yaml names a name server): the escape app, which has the
// network plug, reads the resolv.conf the agent wrote through the base's
// /etc/resolv.conf link.
func TestApplianceInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	packEscapeRoot(t, d)
	hello := d.packHello("1.0", 1)
	ticker := d.packExample("ticker", 1)

	// QEMU's restricted network names no name server by DHCP: the agent
	// sets eth0 up with agent.yaml's, and writes it to resolv.conf.
	testutil.WriteFile(t, filepath.Join(d.work, "agent.yaml"), "network: {eth0: {address: 10.0.2.15/24, dns: [10.0.2.3]}}\n")
	d.buildDisk(vmlinuz, modules, "escape.pdk", ticker)

	// The assertions travel on a third disk, padded to whole sectors.
	assertLen := d.assertDisk(hello)
	// A listener for the guest forward, which QEMU connects to at its start:
	// the forward only gives the guest its network device.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	forward := fmt.Sprintf("8080:%d", l.Addr().(*net.TCPAddr).Port)
	script := strings.Join([]string{
		// First: the seeded ticker's services were started at boot, by
		// the agent's start, before it said it was ready and this ran.
		"paddock services ticker",
		"paddock list",
		pickDisks,
		fmt.Sprintf("head -c %d $ASSERT > /tmp/hello.assert", assertLen),
		"paddock install $PKG --assert /tmp/hello.assert",
		"paddock run hello",
		"paddock run escape -- mount block_device read_etc_hostname own_data euid",
		// The agent writes resolv.conf once it set eth0 up: wait for it
		// (30 s at most), then an app with the network plug reads it.
		// The bug: /etc/resolv.conf dangled in the sandbox.
		`i=0; until grep -qs '^nameserver' /etc/resolv.conf || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done`,
		`echo "resolv waited $i/10 s: $(head -n 1 /etc/resolv.conf)"; if [ $i -ge 300 ]; then paddock network; fi`,
		"paddock run escape -- resolv_conf",
		`echo hello-owner=$(stat -c %u /var/lib/paddock/data/hello/1)`,
		`echo denied=$(dmesg | grep 'apparmor="DENIED"' | grep 'profile="paddock.escape.escape"' | grep -c 'name="/etc/hostname"')`,
		`echo cgroup=$(awk '$2 == "/sys/fs/cgroup" {print $3}' /proc/mounts)`,
		"paddock logs ticker.tick -n 0",
		`paddock base status --json | grep -q '"verified": true' && echo base=verified`,
	}, "\n")
	out := d.ok("vm", "run", "disk.img", "--kernel", vmlinux, "--initrd", "initrd.img",
		"--disk-ro", filepath.Join(d.work, hello), "--disk-ro", filepath.Join(d.work, "assert.disk"),
		"--guest-forward", forward, "--", script)
	t.Logf("the guest answered:\n%s", out)
	for _, want := range []string{
		"escape", // the seeded app is listed
		"Hello from hello (revision 1)!",
		"mount: EPERM",
		"block_device: EPERM",
		"read_etc_hostname: EACCES",
		"own_data: allowed",
		"euid: 0",
		"resolv_conf: agent's", // the sandbox shows the agent's resolv.conf
		"cgroup=cgroup2",
		"ticker 1.0 (revision 1) starts", // its log
		"base=verified",                  // buildDisk's initramfs trusts the root key: dm-verity
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the guest's answer lacks %q", want)
		}
	}
	// The script's first command found tick running, with a process.
	if !regexp.MustCompile(`ticker\.tick\s+running since \S+\s+[0-9]+\s`).MatchString(out) {
		t.Errorf("the seeded ticker.tick was not running when paddock.cmd began")
	}
	if !regexp.MustCompile(`hello-owner=7[0-9]{4}\b`).MatchString(out) {
		t.Errorf("hello's data in the guest does not belong to an app's own user (70000 to 79999)")
	}
	if strings.Contains(out, "denied=0") || !strings.Contains(out, "denied=") {
		t.Errorf("no AppArmor DENIED line for /etc/hostname in the guest's kernel log")
	}
}
