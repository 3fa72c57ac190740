package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/images/imagestest"
	"paddock.dev/paddock/internal/partition"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/qemu"
)

// The boot side of base updates in the appliance (issue 13, items 4 and
// 5): a verified base, a try that does not commit, a try refused by
// verity. The slot and its assertion are written into the disk image from
// the host, as a base update writes them on the device (the update command
// is tested on its own): the boot side is what is under test here.

// fullMatrix runs the long cases too (scripts/e2e-full.sh sets it).
func fullMatrix() bool { return os.Getenv("PADDOCK_E2E_FULL") == "1" }

// baseDisk is an appliance disk whose initramfs trusts root.asc: it boots
// only verified bases, and slot a holds a signed base (revision 1).
type baseDisk struct {
	d              *device
	vmlinux, img   string
	aRootHash      string // the verity root hash of slot a's base
	bootenv, data  int64  // where the partitions start in img
	baseB          int64
	baseBSize      int64
	consoleTimeout time.Duration
}

func newBaseDisk(t *testing.T) *baseDisk {
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", "base.img", "--key", "root", "--revision", "1")
	d.ok("image", "initrd", "--modules", modules, "--paddock", binary, "--trust", "root.asc", "-o", "initrd.img")
	d.ok("image", "build", "--gadget", filepath.Join(examples, "gadget-amd64"), "--base", "base.img",
		"--kernel", vmlinuz, "--initrd", "initrd.img", "--arch", "amd64", "-o", "disk.img", "-q")
	b := &baseDisk{d: d, vmlinux: vmlinux, img: filepath.Join(d.work, "disk.img"), consoleTimeout: 4 * time.Minute}
	b.aRootHash = rootHashOf(t, filepath.Join(d.work, "base.img.assert"))
	b.bootenv = bootenvOffset(t, b.img)
	_, table := imagestest.Open(t, b.img)
	sector := int64(table.LogicalSectorSize)
	for _, p := range table.Partitions {
		switch p.Name {
		case partition.Data:
			b.data = int64(p.Start) * sector
		case partition.BaseB:
			b.baseB, b.baseBSize = int64(p.Start)*sector, int64(p.End-p.Start+1)*sector
		}
	}
	if b.data == 0 || b.baseB == 0 {
		t.Fatal("the disk has no data or base-b partition")
	}
	return b
}

// slotImage builds a base signed as revision rev whose /usr/bin/paddock is
// bin, into NAME.img and NAME.img.assert.
func (b *baseDisk) slotImage(name, bin string, rev int) string {
	b.d.ok("image", "base", "--arch", "amd64", "--paddock", bin, "--trust", "root.asc", "-o", name+".img",
		"--key", "root", "--revision", fmt.Sprint(rev))
	return filepath.Join(b.d.work, name+".img")
}

// writeSlotB writes a slot image into base-b and its assertion next to
// slot b's on the data partition, as an update does; with flip >= 0 the
// byte at flip in the slot is changed after the write (a corrupted write,
// or tampering, before the reboot).
func (b *baseDisk) writeSlotB(t *testing.T, slotImg string, flip int64) {
	t.Helper()
	data := []byte(testutil.ReadFile(t, slotImg))
	if int64(len(data)) > b.baseBSize {
		t.Fatalf("the slot image is %d bytes, base-b %d", len(data), b.baseBSize)
	}
	if flip >= 0 {
		data[flip] ^= 0x55
	}
	f, err := os.OpenFile(b.img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, b.baseB); err != nil {
		t.Fatal(err)
	}
	fs := fmt.Sprintf("%s?offset=%d", b.img, b.data)
	dst := partition.StateDir + "/" + partition.BaseAssertion("b")
	exec.Command("debugfs", "-w", "-R", "rm "+dst, fs).Run() // an older one: fine if none
	if out, err := exec.Command("debugfs", "-w", "-R", "write "+slotImg+".assert "+dst, fs).CombinedOutput(); err != nil || !strings.Contains(string(out), "Allocated inode") {
		t.Fatalf("cannot write %s into the data partition: %v\n%s", dst, err, out)
	}
}

// env reads the boot environment of the disk; change, if set, changes it
// (as the agent would, through package boot) and writes it back.
func (b *baseDisk) env(t *testing.T, change func(path string) error) *boot.Env {
	t.Helper()
	p := extractBootenv(t, b.img, b.bootenv)
	if change != nil {
		if err := change(p); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(b.img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte(testutil.ReadFile(t, p)), b.bootenv); err != nil {
			t.Fatal(err)
		}
	}
	e, rep := boot.Load(p)
	if rep != nil {
		t.Fatalf("the boot environment on the disk needed a repair: %v", rep)
	}
	return e
}

// boot boots the disk once. With a command it waits for the agent, runs
// it and returns its output; without one it waits for QEMU to end (the
// guest reboots: -no-reboot ends QEMU). It returns the console too.
func (b *baseDisk) boot(t *testing.T, what string, c qemu.Config, command string) (output, console string) {
	t.Helper()
	var con syncBuf
	c.Kernel, c.Initrd, c.Disks = b.vmlinux, filepath.Join(b.d.work, "initrd.img"), []string{b.img}
	c.Append = strings.TrimSpace("paddock.trace=1 " + c.Append)
	c.Console, c.Timeout = &con, b.consoleTimeout
	ctx, cancel := context.WithTimeout(context.Background(), b.consoleTimeout)
	defer cancel()
	start := time.Now()
	if command != "" {
		out, code, err := qemu.RunCommand(ctx, c, command)
		if err != nil || code != 0 {
			t.Fatalf("%s: the command failed (code %d, %v): %s\nconsole:\n%s", what, code, err, out, con.String())
		}
		output = out
	} else {
		vm, err := qemu.Start(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Wait(); err != nil {
			t.Fatalf("%s: %v\nconsole:\n%s", what, err, con.String())
		}
	}
	t.Logf("%s: %v", what, time.Since(start).Round(100*time.Millisecond))
	return output, con.String()
}

// statusScript prints this boot's record and the boot problems.
const statusScript = "cat /run/paddock/boot.json; echo; echo problems:; cat /var/lib/paddock/" + boot.ProblemsName

// bootRecord parses the record statusScript prints.
func bootRecord(t *testing.T, out string) *boot.BootRecord {
	t.Helper()
	js, _, _ := strings.Cut(out, "problems:")
	var r boot.BootRecord
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("cannot read the boot record: %v\n%s", err, out)
	}
	return &r
}

// TestApplianceBaseTryInQEMU boots one disk, whose initramfs trusts the
// root key, through the boot side of base updates:
//
//  0. power cuts (QEMU killed) at 5 points around stage 1's write of the
//     boot environment at the start of a try (25 with PADDOCK_E2E_FULL=1):
//     each time the environment keeps the known-good slot and boots a
//     good slot;
//  1. slot b holds a good base with one flipped byte, set to try: verity
//     refuses it in stage 1 (the read-through of a try), slot b is marked
//     bad with why, and the same boot runs slot a, verified;
//  2. slot b holds a base whose init panics, set to try once: the kernel
//     panics, panic=-1 reboots;
//  3. the next boot falls back to slot a and says why, on the console, in
//     the boot environment and in boot-problems.
//
// With PADDOCK_E2E_FULL=1 it goes on: a try of two attempts whose init
// panics twice, and a base whose init hangs, reset by the i6300esb
// watchdog.
func TestApplianceBaseTryInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	b := newBaseDisk(t)
	goodB := b.slotImage("good", binary, 2)
	panicB := b.slotImage("panic", buildBadInit(t, b.d.work, "panic"), 3)

	// 0. Power cuts while stage 1 writes the boot environment (it counts
	// the try's boot just after it says which slot it boots): after each,
	// the environment holds the known-good slot a and boots a good slot.
	b.writeSlotB(t, goodB, 3*4096+100) // corrupted: step 1 finds it
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 20) })
	// The write (then, after the try's read-through, the refusal's) lands
	// some tens to hundreds of milliseconds after the line under TCG: the
	// cuts spread over the first 600 ms, before, during and after them.
	delays := []time.Duration{0, 60 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond}
	if fullMatrix() {
		for i := range 20 {
			delays = append(delays, time.Duration(i*30)*time.Millisecond+time.Duration(rand.IntN(30000))*time.Microsecond)
		}
	}
	for i, delay := range delays {
		b.cut(t, fmt.Sprintf("power cut %d, %v after the try's boot is chosen", i+1, delay), "booting slot b", delay)
	}

	// 1. A corrupted try is refused by verity; slot a boots in the same boot.
	out, con := b.boot(t, "corrupted try", qemu.Config{}, statusScript)
	rec := bootRecord(t, out)
	if rec.Slot != "a" || !rec.Verified || rec.RootHash != b.aRootHash || !strings.Contains(rec.Fallback, "slot b refused at boot: verity") {
		t.Errorf("corrupted try: got the record %+v, want slot a verified with root hash %s and the fallback", *rec, b.aRootHash)
	}
	for _, want := range []string{"booting slot b", "slot b refused at boot: verity: the base does not match its signed root hash", "booted base slot a"} {
		if !strings.Contains(con, want) {
			t.Errorf("corrupted try: the console lacks %q:\n%s", want, con)
		}
	}
	if !strings.Contains(out, "base: slot b refused at boot: verity") {
		t.Errorf("corrupted try: boot-problems lacks the refusal:\n%s", out)
	}
	if e := b.env(t, nil); e.Slot != "a" || e.Bad != "b" || e.Last.Result != boot.ResultFailed || !strings.Contains(e.Last.Reason, "verity") {
		t.Errorf("corrupted try: got the environment %+v, want slot b bad for verity", *e)
	}

	// 2. A try whose init panics: the kernel reboots.
	b.writeSlotB(t, panicB, -1)
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 1) })
	_, con = b.boot(t, "try whose init panics", qemu.Config{}, "")
	for _, want := range []string{"booting slot b", "mounted (verified by dm-verity", "badinit: the tried base's init panics", "Kernel panic"} {
		if !strings.Contains(con, want) {
			t.Errorf("panicking try: the console lacks %q:\n%s", want, con)
		}
	}
	// 3. Its attempts used up: the fallback, and why.
	out, con = b.boot(t, "fallback after the panic", qemu.Config{}, statusScript)
	why := "the try of slot b failed: not committed after 1 boot(s): it never got its agent ready"
	if rec := bootRecord(t, out); rec.Slot != "a" || !rec.Verified || rec.Tried {
		t.Errorf("fallback: got the record %+v, want slot a verified, not a try", *rec)
	}
	if !strings.Contains(con, why) || !strings.Contains(out, why) {
		t.Errorf("fallback: the console or boot-problems lack %q:\nconsole:\n%s\nout:\n%s", why, con, out)
	}
	if e := b.env(t, nil); e.Slot != "a" || e.Bad != "b" || e.Last.Slot != "b" || e.Last.Result != boot.ResultFailed || e.Last.Boots != 1 {
		t.Errorf("fallback: got the environment %+v, want slot b's try failed after 1 boot", *e)
	}
	if !fullMatrix() {
		return
	}

	// 4. Two attempts, both panicking, then the fallback.
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 2) })
	for i := range 2 {
		_, con = b.boot(t, fmt.Sprintf("panicking try, attempt %d", i+1), qemu.Config{}, "")
		if want := fmt.Sprintf("boot %d of 2", i+1); !strings.Contains(con, want) {
			t.Errorf("attempt %d: the console lacks %q:\n%s", i+1, want, con)
		}
	}
	b.boot(t, "fallback after two panics", qemu.Config{}, statusScript)
	if e := b.env(t, nil); e.Bad != "b" || e.Last.Boots != 2 {
		t.Errorf("after two attempts: got %+v, want slot b bad after 2 boots", *e)
	}

	// 5. A try whose init hangs: the watchdog resets the machine.
	b.writeSlotB(t, b.slotImage("hang", buildBadInit(t, b.d.work, "hang"), 4), -1)
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 1) })
	start := time.Now()
	_, con = b.boot(t, "try whose init hangs", qemu.Config{Watchdog: true, Append: "paddock.watchdog=10"}, "")
	for _, want := range []string{"watchdog", "i6300ESB", "armed", "badinit: this base's init is broken on purpose: hang"} {
		if !strings.Contains(con, want) {
			t.Errorf("hanging try: the console lacks %q:\n%s", want, con)
		}
	}
	t.Logf("the watchdog reset the hung try %v after the boot began", time.Since(start).Round(time.Second))
	out, _ = b.boot(t, "fallback after the hang", qemu.Config{Watchdog: true}, statusScript)
	if rec := bootRecord(t, out); rec.Slot != "a" || !rec.Verified {
		t.Errorf("after the hang: got the record %+v, want slot a", *rec)
	}
	if e := b.env(t, nil); e.Bad != "b" || e.Last.Result != boot.ResultFailed {
		t.Errorf("after the hang: got %+v, want slot b's try failed", *e)
	}
}

// cut boots the disk and cuts the power delay after the console says
// marker, then checks the boot environment: valid (a torn copy is
// repaired from the other), the known-good slot still a, and the slot it
// boots next a good one. A try whose slot got marked bad (the cut came
// after init's verity refusal) is set again, so that the next cut meets a
// try too.
func (b *baseDisk) cut(t *testing.T, what, marker string, delay time.Duration) {
	t.Helper()
	c := qemu.Config{Kernel: b.vmlinux, Initrd: filepath.Join(b.d.work, "initrd.img"), Disks: []string{b.img},
		Append: "paddock.trace=1", Timeout: b.consoleTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), b.consoleTimeout)
	defer cancel()
	start := time.Now()
	vm, err := qemu.Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	err = vm.Expect(ctx, marker)
	time.Sleep(delay)
	vm.PowerCut()
	vm.Wait()
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, vm.Output())
	}
	p := extractBootenv(t, b.img, b.bootenv)
	e, rep := boot.Load(p)
	slot, _ := boot.Choose(e, "")
	if e.Slot != "a" || slot == e.Bad || (slot != "a" && slot != e.Trying && slot != e.Try) {
		t.Fatalf("%s: got the environment %+v (repair %v), booting slot %s; want slot a known good and a good slot booted", what, *e, rep, slot)
	}
	t.Logf("%s: %v, then: trying %q boot %d, bad %q, repair %v", what, time.Since(start).Round(100*time.Millisecond), e.Trying, e.BootCount, e.Bad, rep)
	if e.Bad == "b" || e.Trying == "" {
		b.env(t, func(p string) error { return boot.SetTry(p, "b", 20) })
	}
}

// buildBadInit builds testdata/badinit in mode (panic or hang), static,
// for amd64, into dir, and returns its path.
func buildBadInit(t *testing.T, dir, mode string) string {
	t.Helper()
	out := filepath.Join(dir, "badinit-"+mode)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.mode="+mode, "-o", out, "./testdata/badinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build badinit: %v\n%s", err, b)
	}
	return out
}

// rootHashOf returns the verity root hash of a base's assertion bundle.
func rootHashOf(t *testing.T, file string) string {
	t.Helper()
	as, err := assert.DecodeBundle([]byte(testutil.ReadFile(t, file)))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Type() == assert.BaseRevisionType {
			r, err := assert.ParseBaseRevision(a)
			if err != nil {
				t.Fatal(err)
			}
			return r.VerityRootHash
		}
	}
	t.Fatalf("%s has no base-revision", file)
	return ""
}

// syncBuf is a buffer the console writes to while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
