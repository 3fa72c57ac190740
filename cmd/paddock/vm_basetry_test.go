package main

import (
	"bytes"
	"context"
	endian "encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
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

// decodeAfter decodes into v the first JSON value in out after the line
// marker ("": from the start) that begins a line with '{' or '['. The
// agent's log shares the console with the command's output: a log line can
// come before the value (the agent logs that it started just after it says
// it is ready), and anything may follow it.
func decodeAfter(out, marker string, v any) error {
	lines := strings.Split(out, "\n")
	start := 0
	if marker != "" {
		start = slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == marker }) + 1
		if start == 0 {
			return fmt.Errorf("no line %q in the output", marker)
		}
	}
	for i := start; i < len(lines); i++ {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") || strings.HasPrefix(l, "[") {
			return json.NewDecoder(strings.NewReader(strings.Join(lines[i:], "\n"))).Decode(v)
		}
	}
	return fmt.Errorf("no JSON after %q in the output", marker)
}

// bootRecord parses the record statusScript prints.
func bootRecord(t *testing.T, out string) *boot.BootRecord {
	t.Helper()
	var r boot.BootRecord
	if err := decodeAfter(out, "", &r); err != nil {
		t.Fatalf("cannot read the boot record: %v\n%s", err, out)
	}
	return &r
}

// TestApplianceBaseTryInQEMU boots one disk, whose initramfs trusts the
// root key, through the boot side of base updates and the stories 'paddock
// base status' tells (issue 13):
//
//  0. power cuts (QEMU killed) at 5 points of stage 1's two writes of the
//     boot environment in a try (50 with PADDOCK_E2E_FULL=1): at the
//     console line before the first, within 20 ms of it, the moment the
//     first lands on the disk, up to 300 ms after, and after the second;
//     each time the environment keeps the known-good slot and boots a
//     good slot, and the cuts fell between and after the writes;
//  1. slot b holds a good base with one flipped byte, set to try: verity
//     refuses it in stage 1 (the read-through of a try), slot b is marked
//     bad with why, and the same boot runs slot a, verified; base status
//     says so and what to do;
//  2. slot b holds a base whose init panics, set to try once: the kernel
//     panics, panic=-1 reboots;
//  3. the next boot falls back to slot a and says why, on the console, in
//     the boot environment, in boot-problems and in base status; in the
//     same boot 'paddock base update' writes slot b with a base whose
//     agent.yaml names an unreachable broker and a 5 s health window;
//  4. its tried boot: the agent is up, the fleet link never connects, and
//     after the window the agent marks slot b bad and reboots;
//  5. slot a runs again: the update's change ended "rolled back: unhealthy
//     for 5s after the boot: the fleet link is not connected", and base
//     status (text and --json) names slot b, the reason and what to do.
//
// With PADDOCK_E2E_FULL=1 it goes on: a try of two attempts whose init
// panics twice, a base whose init hangs, reset by the i6300esb watchdog,
// and a base whose agent never gets ready (init's try monitor gives up
// after paddock.trywait), each with its fallback and base status.
func TestApplianceBaseTryInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	b := newBaseDisk(t)
	goodB := b.slotImage("good", binary, 2)
	panicB := b.slotImage("panic", buildBadInit(t, b.d.work, "panic"), 3)

	// 0. Power cuts while stage 1 writes the boot environment: it counts
	// the try's boot (the first write) just after it says which slot it
	// boots, then reads slot b through, finds it corrupted and marks it bad
	// (the second). Each cut is timed from one of three events: the
	// console line before the first write, or either write landing on the
	// disk (QEMU has it, the guest's flush is still under way). After each,
	// the environment holds the known-good slot a and boots a good slot.
	b.writeSlotB(t, goodB, 3*4096+100) // corrupted: step 1 finds it
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 20) })
	points := envCutPoints(5)
	if fullMatrix() {
		points = envCutPoints(50)
	}
	landed := map[int]int{}
	for i, p := range points {
		landed[b.cut(t, fmt.Sprintf("power cut %d, %v after %s", i+1, p.delay, p.anchor()), p)]++
	}
	// The cuts fell before, between and after the writes: spread over them.
	t.Logf("boot-environment power cuts: %d before the try's boot was counted, %d after it, %d after the refusal", landed[0], landed[1], landed[2])
	if landed[1] == 0 || landed[2] == 0 {
		t.Errorf("the power cuts did not spread over the writes: %d before, %d between, %d after both", landed[0], landed[1], landed[2])
	}

	// 1. A corrupted try is refused by verity; slot a boots in the same boot.
	b.env(t, func(p string) error { return boot.Write(p, &boot.Env{Slot: "a", Try: "b", Attempts: 20}) })
	out, con := b.boot(t, "corrupted try", qemu.Config{}, statusScript+statusCmd)
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
	b.checkStatus(t, "corrupted try", out, con, 1, "refused at boot: verity: the base does not match its signed root hash", "did not match its signed base")

	// 2. A try whose init panics: the kernel reboots.
	b.writeSlotB(t, panicB, -1)
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 1) })
	_, con = b.boot(t, "try whose init panics", qemu.Config{}, "")
	for _, want := range []string{"booting slot b", "mounted (verified by dm-verity", "badinit: the tried base's init panics", "Kernel panic"} {
		if !strings.Contains(con, want) {
			t.Errorf("panicking try: the console lacks %q:\n%s", want, con)
		}
	}
	// 3. Its attempts used up: the fallback, and why. The same boot starts
	// step 4: 'paddock base update' (--reboot never) to revision 5, a base
	// that boots but stays unhealthy: its agent.yaml names a fleet broker
	// on the guest's own loopback, where none listens, and gives a tried
	// base 5 s to be healthy (base.health-window).
	testutil.WriteFile(t, filepath.Join(b.d.work, "sick.yaml"), "broker: tcp://127.0.0.1:1\nbase: {health-window: 5s}\n")
	b.d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", "sick.img",
		"--agent-config", "sick.yaml", "--version", "5", "--key", "root", "--revision", "5")
	n := b.d.assertDisk("sick.img")
	update := fmt.Sprintf("; echo UPDATE; %s; head -c %d $ASSERT > /tmp/sick.assert && paddock base update $PKG --assert /tmp/sick.assert --reboot never", pickDisks, n)
	out, con = b.boot(t, "fallback after the panic, and an update", qemu.Config{ReadOnlyDisks: []string{
		filepath.Join(b.d.work, "sick.img"), filepath.Join(b.d.work, "assert.disk")}}, statusScript+statusCmd+update)
	why := "the try of slot b failed: not committed after 1 boot(s): it never got its agent ready"
	if rec := bootRecord(t, out); rec.Slot != "a" || !rec.Verified || rec.Tried {
		t.Errorf("fallback: got the record %+v, want slot a verified, not a try", *rec)
	}
	if !strings.Contains(con, why) || !strings.Contains(out, why) {
		t.Errorf("fallback: the console or boot-problems lack %q:\nconsole:\n%s\nout:\n%s", why, con, out)
	}
	b.checkStatus(t, "fallback after the panic", out, con, 1, "not committed after 1 boot(s): it never got its agent ready", "its init or kernel panicked, or it hung and the watchdog reset it")
	if !strings.Contains(out, "base written and verified: the next reboot tries it") {
		t.Fatalf("update to the unhealthy base: got\n%s\nwant the slot written and verified", out)
	}
	if e := b.env(t, nil); e.Slot != "a" || e.Try != "b" || e.Attempts != 2 {
		t.Fatalf("update to the unhealthy base: got the environment %+v, want slot a known good, a try of b with 2 attempts", *e)
	}

	// 4. The tried boot of the unhealthy base: its agent is up, the fleet
	// link never connects; after the window the agent marks slot b bad and
	// reboots (QEMU ends).
	_, con = b.boot(t, "tried boot of a base that stays unhealthy", qemu.Config{}, "")
	for _, want := range []string{"booting slot b (a try: boot 1 of 2)", "paddock: agent ready"} {
		if !strings.Contains(con, want) {
			t.Errorf("unhealthy try: the console lacks %q:\n%s", want, con)
		}
	}
	unhealthy := "unhealthy for 5s after the boot: the fleet link is not connected"
	if e := b.env(t, nil); e.Slot != "a" || e.Bad != "b" || e.Trying != "" || e.Last.Slot != "b" || e.Last.Result != boot.ResultFailed ||
		e.Last.Boots != 1 || !strings.Contains(e.Last.Reason, unhealthy) {
		t.Errorf("unhealthy try: got the environment %+v, want slot b's try failed after 1 boot: %s", *e, unhealthy)
		b.explain(t, "", con)
	}

	// 5. The old base runs again: the update's change ends "rolled back:
	// REASON", and 'paddock base status' (text and --json) says which slot
	// failed and why.
	out, con = b.boot(t, "back on slot a after the unhealthy try", qemu.Config{},
		"for i in $(seq 120); do paddock changes --in-progress | grep -q 'No changes' && break; sleep 1; done"+
			statusCmd+"; echo CHANGES; paddock changes --json")
	b.checkStatus(t, "back on slot a", out, con, 1, unhealthy, "health-window")
	b.checkRolledBack(t, out, con, 5, unhealthy)
	if !fullMatrix() {
		return
	}

	// 4. Two attempts, both panicking, then the fallback (slot b holds the
	// unhealthy base since step 3).
	b.writeSlotB(t, panicB, -1)
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
	out, con = b.boot(t, "fallback after the hang", qemu.Config{Watchdog: true}, statusScript+statusCmd)
	if rec := bootRecord(t, out); rec.Slot != "a" || !rec.Verified {
		t.Errorf("after the hang: got the record %+v, want slot a", *rec)
	}
	if e := b.env(t, nil); e.Bad != "b" || e.Last.Result != boot.ResultFailed {
		t.Errorf("after the hang: got %+v, want slot b's try failed", *e)
	}
	b.checkStatus(t, "after the hang", out, con, 1, "it never got its agent ready", "it hung and the watchdog reset it")

	// 6. A base whose agent never gets ready (its agent.yaml names a CA
	// file the base lacks: the agent cannot start its fleet link and
	// exits, again and again): init's try monitor gives up after the try
	// wait, notes why and reboots; the next boot falls back and says why.
	testutil.WriteFile(t, filepath.Join(b.d.work, "noca.yaml"), "broker: ssl://127.0.0.1:1\ntls: {ca: /etc/paddock/no-such-ca.pem}\n")
	b.d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", "noca.img",
		"--agent-config", "noca.yaml", "--key", "root", "--revision", "6")
	b.writeSlotB(t, filepath.Join(b.d.work, "noca.img"), -1)
	b.env(t, func(p string) error { return boot.SetTry(p, "b", 1) })
	_, con = b.boot(t, "try whose agent never gets ready", qemu.Config{Append: "paddock.trywait=20"}, "")
	if want := "tried base slot b: its agent was not ready within 20s: rebooting"; !strings.Contains(con, want) {
		t.Errorf("agent never ready: the console lacks %q:\n%s", want, con)
	}
	out, con = b.boot(t, "fallback after the agent was never ready", qemu.Config{}, statusScript+statusCmd)
	b.checkStatus(t, "agent never ready", out, con, 1, "not committed after 1 boot(s): its agent was not ready within 20s", "agent never got ready: check its agent.yaml")
}

// statusCmd prints 'paddock base status' in text, then in JSON, after
// the markers STATUS and JSON (checkStatus reads them).
const statusCmd = "; echo STATUS; paddock base status; echo JSON; paddock base status --json"

// checkStatus checks what statusCmd printed in out after a failed try of
// slot b: slot a runs, slot b is bad, and the last try failed after boots
// boot(s) for reason, with advice in what to do, in the text and the JSON.
func (b *baseDisk) checkStatus(t *testing.T, what, out, con string, boots int, reason, advice string) {
	t.Helper()
	failed := t.Failed()
	_, rest, _ := strings.Cut(out, "STATUS")
	text, _, _ := strings.Cut(rest, "JSON")
	var st apitypes.BaseStatus
	if err := decodeAfter(out, "JSON", &st); err != nil {
		t.Errorf("%s: cannot read the status: %v", what, err)
	}
	if st.Running != "a" || st.Last.Slot != "b" || st.Last.Result != boot.ResultFailed || st.Last.Boots != boots ||
		!strings.Contains(st.Last.Reason, reason) || !strings.Contains(st.Last.Advice, advice) {
		t.Errorf("%s: got the status %+v, want slot a running and slot b's try failed after %d boot(s): %s, advice %q", what, st, boots, reason, advice)
	}
	for _, sl := range st.Slots {
		if sl.Name == "b" && (sl.State != boot.StateBad || !strings.Contains(sl.Why, reason)) {
			t.Errorf("%s: got slot %+v, want b bad: %s", what, sl, reason)
		}
	}
	for _, want := range []string{fmt.Sprintf("last try: slot b failed after %d boot(s): ", boots), reason, "what to do: ", advice} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: the status text lacks %q:\n%s", what, want, text)
		}
	}
	if t.Failed() && !failed {
		b.explain(t, out, con)
	}
}

// checkRolledBack checks the changes step 5's command printed after
// CHANGES: the change that started the update to revision rev ended
// "rolled back: REASON". On failure it prints the guest's output, the boot
// environment and the console.
func (b *baseDisk) checkRolledBack(t *testing.T, out, con string, rev int, reason string) {
	t.Helper()
	failed := t.Failed()
	var chgs []apitypes.ChangeInfo
	if err := decodeAfter(out, "CHANGES", &chgs); err != nil {
		t.Errorf("cannot read the changes: %v", err)
	}
	found := false
	for _, c := range chgs {
		if c.Kind != "base-update" || !strings.Contains(c.Summary, fmt.Sprintf("revision %d", rev)) {
			continue
		}
		found = true
		if c.Status != "Error" || !strings.Contains(c.Err, "rolled back: "+reason) {
			t.Errorf("the update's change: got %s (%s), want Error: rolled back: %s", c.Status, c.Err, reason)
		}
	}
	if !found {
		t.Errorf("no base-update change to revision %d", rev)
	}
	if t.Failed() && !failed {
		b.explain(t, out, con)
	}
}

// explain prints what explains a failed step: the guest's output (its
// status and changes, with their task logs), the boot environment on the
// disk and the console's tail.
func (b *baseDisk) explain(t *testing.T, out, con string) {
	t.Helper()
	p := extractBootenv(t, b.img, b.bootenv)
	e, rep := boot.Load(p)
	lines := strings.Split(con, "\n")
	t.Logf("the guest's output:\n%s\nthe boot environment: %+v (repair %v)\nthe console's last lines:\n%s",
		out, *e, rep, strings.Join(lines[max(0, len(lines)-80):], "\n"))
}

// An envCut is when a power cut comes during stage 1's writes of the boot
// environment: delay after the console line that comes just before the
// first write (writes 0), or after the first or second write landed on
// the disk (writes 1 or 2).
type envCut struct {
	writes int
	delay  time.Duration
}

func (p envCut) anchor() string {
	if p.writes == 0 {
		return `"booting slot b"`
	}
	return fmt.Sprintf("write %d of the boot environment landed", p.writes)
}

// envCutPoints returns n cut points, cycling through five kinds: at the
// console line and within 20 ms of it (the first write in flight), the
// moment the first write lands and up to 300 ms after it (the second's
// read-through of the slot), and up to 50 ms after the second lands.
func envCutPoints(n int) []envCut {
	ms := func(lo, hi int) time.Duration {
		return time.Duration(lo)*time.Millisecond + time.Duration(rand.IntN((hi-lo)*1000+1))*time.Microsecond
	}
	var ps []envCut
	for i := range n {
		switch i % 5 {
		case 0:
			ps = append(ps, envCut{0, ms(0, 2)})
		case 1:
			ps = append(ps, envCut{0, ms(2, 20)})
		case 2:
			ps = append(ps, envCut{1, 0})
		case 3:
			ps = append(ps, envCut{1, ms(0, 300)})
		case 4:
			ps = append(ps, envCut{2, ms(0, 50)})
		}
	}
	return ps
}

// cut boots the disk and cuts the power at p, then checks the boot
// environment: valid (a torn copy is repaired from the other), the
// known-good slot still a, and the slot it boots next a good one. It
// returns how many of the boot's writes had landed (0 to 2). Then it sets
// a fresh try of slot b (attempts 20) if the cut left none, so that the
// next cut meets a try too.
func (b *baseDisk) cut(t *testing.T, what string, p envCut) int {
	t.Helper()
	c := qemu.Config{Kernel: b.vmlinux, Initrd: filepath.Join(b.d.work, "initrd.img"), Disks: []string{b.img},
		Append: "paddock.trace=1", Timeout: b.consoleTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), b.consoleTimeout)
	defer cancel()
	seq0 := b.envSeq(t)
	start := time.Now()
	vm, err := qemu.Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	err = vm.Expect(ctx, "booting slot b")
	if err == nil && p.writes > 0 {
		// Stage 1 writes within seconds of the line (the read-through of
		// the slot takes the longest): a minute is ample, and well inside
		// the console timeout.
		deadline := time.Now().Add(time.Minute)
		for b.envSeq(t) < seq0+uint32(p.writes) && err == nil {
			if time.Now().After(deadline) {
				err = fmt.Errorf("the boot environment was not written %d time(s) within a minute", p.writes)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(p.delay)
	vm.PowerCut()
	vm.Wait()
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, vm.Output())
	}
	landed := int(b.envSeq(t) - seq0)
	path := extractBootenv(t, b.img, b.bootenv)
	e, rep := boot.Load(path)
	slot, _ := boot.Choose(e, "")
	if e.Slot != "a" || slot == e.Bad || (slot != "a" && slot != e.Trying && slot != e.Try) {
		t.Fatalf("%s: got the environment %+v (repair %v), booting slot %s; want slot a known good and a good slot booted", what, *e, rep, slot)
	}
	t.Logf("%s: %v, %d write(s) landed, then: trying %q boot %d, bad %q, repair %v", what, time.Since(start).Round(100*time.Millisecond), landed, e.Trying, e.BootCount, e.Bad, rep)
	if e.Bad == "b" || e.Trying == "" || e.BootCount >= 15 {
		b.env(t, func(p string) error { return boot.Write(p, &boot.Env{Slot: "a", Try: "b", Attempts: 20}) })
	}
	return min(landed, 2)
}

// envSeq returns the sequence number of the boot environment on the disk:
// the higher of its valid copies' (see package boot), 0 when none is.
func (b *baseDisk) envSeq(t *testing.T) uint32 {
	t.Helper()
	f, err := os.Open(b.img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 2*4096)
	if _, err := f.ReadAt(buf, b.bootenv); err != nil {
		t.Fatal(err)
	}
	var seq uint32
	for i := range 2 {
		rec := buf[i*4096 : (i+1)*4096]
		if crc32.ChecksumIEEE(rec[:4088]) == endian.BigEndian.Uint32(rec[4092:]) {
			seq = max(seq, endian.BigEndian.Uint32(rec[4088:4092]))
		}
	}
	return seq
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
