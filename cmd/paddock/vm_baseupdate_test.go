package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/qemu"
)

// TestApplianceBaseUpdateInQEMU updates the base of a booted appliance
// with 'paddock base update' (issue 13, items 2 to 4 and 6): the new slot
// image (revision 2, another version) and its assertions come on two more
// disks; the agent checks it, writes slot b (copying the chunks slot a
// holds), reads it back, keeps its assertion and sets the try; at the next
// boot init tries slot b through dm-verity, the agent finds the device
// healthy and commits it, and the change ends done. With
// PADDOCK_E2E_FULL=1 it updates back into slot a (revision 3) the same
// way.
//
// The first update meets power cuts (QEMU killed) at spread points while
// it writes slot b (3, or 50 with PADDOCK_E2E_FULL=1): after each, the
// boot environment keeps slot a known good and never boots a half-written
// slot b, the next boot runs slot a, and its agent resumes the update from
// the last checkpoint, which at last succeeds.
func TestApplianceBaseUpdateInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	b := newBaseDisk(t)
	steps := []struct {
		name, from, to string
		rev            int
	}{{"b2", "a", "b", 2}, {"a3", "b", "a", 3}}
	if !fullMatrix() {
		steps = steps[:1]
	}
	for _, s := range steps {
		b.d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", s.name+".img",
			"--version", fmt.Sprint(s.rev), "--key", "root", "--revision", fmt.Sprint(s.rev))
		n := b.d.assertDisk(s.name + ".img")
		disks := []string{filepath.Join(b.d.work, s.name+".img"), filepath.Join(b.d.work, "assert.disk")}
		update := fmt.Sprintf(pickDisks+"; head -c %d $ASSERT > /tmp/base.assert && paddock base update $PKG --assert /tmp/base.assert --reboot never && paddock base status --json", n)
		inProgress, tried := false, false
		if s.rev == 2 {
			inProgress = b.powerCuts(t, disks, update, s.to)
			tried = !inProgress
		}
		if inProgress {
			// An interrupted update resumes by itself at the agent's start:
			// wait for it to set the try
			// (or, cut before the agent recorded it, start it again).
			update = update + "; for i in $(seq 300); do paddock base status --json | grep -q '\"state\": \"try\"' && break; sleep 1; done; " +
				"paddock base status --json | grep -q '\"state\": \"try\"' && echo 'base written and verified: the next reboot tries it'"
		}
		if !tried {
			out := b.bootWith(t, "update "+s.from+" → "+s.to, disks, update)
			if !strings.Contains(out, "base written and verified: the next reboot tries it") {
				t.Fatalf("update %s: got\n%s\nwant the slot written and verified", s.name, out)
			}
		}
		if e := b.env(t, nil); e.Try != s.to || e.Slot != s.from {
			t.Fatalf("update %s: got the environment %+v, want slot %s known good and a try of %s", s.name, *e, s.from, s.to)
		}
		// The tried boot: the agent commits once healthy, and the change
		// ends done.
		wait := "for i in $(seq 300); do paddock changes --in-progress | grep -q 'No changes' && break; sleep 1; done; " +
			"echo STATUS; paddock base status --json; echo CHANGES; paddock changes --json"
		out := b.bootWith(t, "tried boot of "+s.to, nil, wait)
		statusJS, changesJS, _ := strings.Cut(strings.SplitN(out, "STATUS", 2)[1], "CHANGES")
		var st apitypes.BaseStatus
		if err := json.Unmarshal([]byte(statusJS), &st); err != nil {
			t.Fatalf("tried boot of %s: cannot read the status: %v\n%s", s.to, err, out)
		}
		if st.Running != s.to || !st.Verified {
			t.Errorf("tried boot of %s: got status %+v, want slot %s running, verified", s.to, st, s.to)
		}
		for _, sl := range st.Slots {
			if sl.Name == s.to && (sl.State != boot.StateGood || sl.Revision != s.rev) {
				t.Errorf("tried boot of %s: got slot %+v, want good with revision %d", s.to, sl, s.rev)
			}
		}
		if st.Last.Slot != s.to || st.Last.Result != boot.ResultCommitted {
			t.Errorf("tried boot of %s: got the last try %+v, want %s committed", s.to, st.Last, s.to)
		}
		var chgs []apitypes.ChangeInfo
		if err := json.Unmarshal([]byte(changesJS), &chgs); err != nil {
			t.Fatalf("tried boot of %s: cannot read the changes: %v\n%s", s.to, err, out)
		}
		var found bool
		for _, c := range chgs {
			if c.Kind == "base-update" && strings.Contains(c.Summary, fmt.Sprintf("revision %d", s.rev)) {
				found = true
				if c.Status != "Done" {
					t.Errorf("tried boot of %s: got the change %s %s (%s), want Done", s.to, c.ID, c.Status, c.Err)
				}
				for _, task := range c.Tasks {
					if task.Kind == "write-base" {
						// Most chunks are the running slot's: copied, not read from the source.
						log := strings.Join(task.Log, "\n")
						t.Logf("write-base: %s", log)
						if !strings.Contains(log, "copied from slot "+s.from) || strings.Contains(log, " 0 B copied") {
							t.Errorf("tried boot of %s: got the write's log %q, want chunks copied from slot %s", s.to, log, s.from)
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("tried boot of %s: no base-update change to revision %d:\n%s", s.to, s.rev, changesJS)
		}
		if e := b.env(t, nil); e.Slot != s.to || e.Trying != "" {
			t.Errorf("tried boot of %s: got the environment %+v, want slot %s committed", s.to, *e, s.to)
		}
	}
}

// bootWith boots the disk with more read-only disks (/dev/vdb, ...), runs
// command once the agent is ready and returns its output.
func (b *baseDisk) bootWith(t *testing.T, what string, disks []string, command string) string {
	t.Helper()
	var con syncBuf
	c := qemu.Config{Kernel: b.vmlinux, Initrd: filepath.Join(b.d.work, "initrd.img"), Disks: []string{b.img},
		ReadOnlyDisks: disks, Append: "paddock.trace=1", Console: &con, Timeout: b.consoleTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), b.consoleTimeout)
	defer cancel()
	out, code, err := qemu.RunCommand(ctx, c, command)
	if err != nil || code != 0 {
		t.Fatalf("%s: the command failed (code %d, %v): %s\nconsole:\n%s", what, code, err, out, con.String())
	}
	t.Logf("%s:\n%s", what, out)
	return out
}

// powerCuts boots the disk and cuts the power at spread points after the
// update command starts (the first boot) or after the agent is ready (the
// next ones, whose agent resumes the update by itself), until the cuts
// are used up or the update got to set the try of slot. After each cut the
// known-good slot must be a and the next boot a slot that is not being
// written. It reports whether an update is left in progress.
func (b *baseDisk) powerCuts(t *testing.T, disks []string, update, slot string) bool {
	t.Helper()
	cuts := 3
	if fullMatrix() {
		cuts = 50
	}
	for i := range cuts {
		c := qemu.Config{Kernel: b.vmlinux, Initrd: filepath.Join(b.d.work, "initrd.img"), Disks: []string{b.img},
			ReadOnlyDisks: disks, Append: "paddock.trace=1", Timeout: b.consoleTimeout}
		// Each boot asks for the update: the first starts it, the next
		// ones find it resumed by the agent (and are refused: it is in
		// progress) or start it again if the cut came before it was
		// recorded. The check and the write take a few seconds under TCG.
		c.Append += " paddock.cmd=" + base64.StdEncoding.EncodeToString([]byte(update+"; sleep 600"))
		marker := "paddock: cmd begin"
		delay := time.Duration(500+rand.IntN(5000)) * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), b.consoleTimeout)
		vm, err := qemu.Start(ctx, c)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		err = vm.Expect(ctx, marker)
		if err == nil {
			// Cut while the slot is written: once the boot environment
			// on the disk marks it (MarkWriting), within the second or
			// two the write takes.
			marked := b.waitWriting(ctx, 90*time.Second)
			delay = time.Duration(rand.IntN(1500)) * time.Millisecond
			if !marked {
				t.Logf("power cut %d: the slot was not marked as being written", i+1)
			}
			marker = "the slot marked as being written"
		}
		time.Sleep(delay)
		vm.PowerCut()
		vm.Wait()
		cancel()
		if err != nil {
			t.Fatalf("power cut %d: %v\n%s", i+1, err, vm.Output())
		}
		if !strings.Contains(vm.Output(), "booted base slot a") {
			t.Errorf("power cut %d: the boot did not run slot a:\n%s", i+1, vm.Output())
		}
		e := b.env(t, nil)
		next, _ := boot.Choose(e, "")
		t.Logf("power cut %d, %v after %q: the environment has slot %s, try %q, bad %q (%s)", i+1, delay, marker, e.Slot, e.Try, e.Bad, e.BadWhy)
		if e.Slot != "a" || (next == slot && e.Try != slot) {
			t.Fatalf("power cut %d: got the environment %+v booting slot %s next, want slot a known good and slot %s booted only as a try", i+1, *e, next, slot)
		}
		if e.Try == slot {
			return false // written and verified: the try is next
		}
	}
	return true
}

// waitWriting waits until the boot environment on the disk marks a slot
// as being written (bad_why=writing), and reports whether it did.
func (b *baseDisk) waitWriting(ctx context.Context, timeout time.Duration) bool {
	f, err := os.Open(b.img)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 8192)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := f.ReadAt(buf, b.bootenv); err == nil && bytes.Contains(buf, []byte("bad_why=writing")) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
