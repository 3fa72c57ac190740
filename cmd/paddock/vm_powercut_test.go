package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/qemu"
)

// TestAppliancePowerCutMidRefresh pins issue 9 item 8 (first bullet) in
// the appliance: the power goes between the mount and the profiles of a
// refresh (the agent stops there by PADDOCK_FAULT, passed to init on the
// kernel command line, then QEMU is killed). On the old code the next boot
// undid the resumed change ("cannot read the package's app.yaml": the
// mount had gone with the power) and left no /apps/hello/current and no
// AppArmor profile: 'paddock run hello' said "hello is not installed".
// Now the change finishes after the reboot and hello runs.
func TestAppliancePowerCutMidRefresh(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	d.setupKeys("hello")
	one, two := d.packHello("1.0", 1), d.packHello("2.0", 2)
	d.buildDisk(vmlinuz, modules, one)
	assertLen := d.assertDisk(two)

	// Boot 1: hello 1 is seeded; its refresh to 2 stops before the profiles, and the power goes.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := qemu.Config{
		Kernel: vmlinux, Initrd: filepath.Join(d.work, "initrd.img"),
		Disks:         []string{filepath.Join(d.work, "disk.img")},
		ReadOnlyDisks: []string{filepath.Join(d.work, two), filepath.Join(d.work, "assert.disk")},
		Append:        "PADDOCK_FAULT=generate-profiles:before",
		Timeout:       8 * time.Minute,
	}
	vm, err := qemu.StartCommand(ctx, c, strings.Join([]string{
		"paddock list",
		pickDisks,
		fmt.Sprintf("head -c %d $ASSERT > /tmp/hello.assert", assertLen),
		"paddock install $PKG --assert /tmp/hello.assert",
		"echo install ended: $?",
		"sleep 600",
	}, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = vm.Expect(ctx, "install ended:")
	vm.PowerCut()
	if werr := vm.Wait(); err != nil || !errors.Is(werr, qemu.ErrPowerCut) {
		t.Fatalf("boot 1: %v, %v\n%s", err, werr, vm.Output())
	}
	out := vm.Output()
	if !strings.Contains(out, "injected fault generate-profiles:before") || strings.Contains(out, "install ended: 0") {
		t.Fatalf("boot 1: the refresh was not cut before its profiles:\n%s", out)
	}

	// Boot 2: the agent resumes the refresh; hello runs.
	script := strings.Join([]string{
		`for i in $(seq 300); do [ "$(paddock changes --in-progress --json)" = "[]" ] && break; sleep 0.2; done`,
		"paddock changes",
		"paddock run hello",
		"ls /apps/hello",
	}, "\n")
	out = d.ok("vm", "run", "disk.img", "--kernel", vmlinux, "--initrd", "initrd.img", "--", script)
	t.Logf("after the power cut, the guest answered:\n%s", out)
	if !regexp.MustCompile(`(?m)Done .*Refresh "hello" revision 2`).MatchString(out) {
		t.Errorf("the refresh did not end Done after the reboot")
	}
	for _, want := range []string{"Hello from hello (revision 2)!", "current"} {
		if !strings.Contains(out, want) {
			t.Errorf("the guest's answer lacks %q", want)
		}
	}
}
