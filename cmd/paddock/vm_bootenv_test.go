package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/images/imagestest"
	"paddock.dev/paddock/internal/testutil"
)

// Regression: with both copies of the boot environment damaged, the
// appliance printed "boot failed: bootenv /dev/vda2: no valid copy" and
// powered off, at every boot (bricked until someone rewrote the partition
// from outside); with one damaged copy it booted from the other and never
// repaired it. Two boots of one image: both copies damaged, then (on the
// environment that boot rewrote) the newer copy damaged. Each boot must
// reach the agent on slot a, say on the console what it repaired, leave two
// valid copies on the disk and a record on the data partition that the
// agent can report (/var/lib/paddock/boot-problems, kept across boots).
func TestApplianceBootenvRepairInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.buildDisk(vmlinuz, modules)
	img := filepath.Join(d.work, "disk.img")
	env := bootenvOffset(t, img)

	boots := []struct {
		name      string
		damage    []int64 // copies to damage, 0 or 1
		wantSays  string  // on the console and, last, in the record
		wantLines int     // in the record
	}{
		{"both copies damaged", []int64{0, 1}, "no valid copy, booting the default slot a, both copies rewritten", 1},
		{"newer copy damaged", []int64{1}, "copy 2 damaged (bad checksum", 2},
	}
	for _, b := range boots {
		for _, c := range b.damage {
			flipByte(t, img, env+c*4096+20)
		}
		r := d.paddock("vm", "run", "disk.img", "--kernel", vmlinux, "--initrd", "initrd.img", "-v", "--",
			"cat /var/lib/paddock/"+boot.ProblemsName)
		if r.code != 0 {
			t.Fatalf("%s: the boot failed (exit code %d):\n%s\nconsole:\n%s", b.name, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"booted base slot a", b.wantSays} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: the console lacks %q:\n%s", b.name, want, r.stderr)
			}
		}
		var record []string
		for line := range strings.Lines(strings.TrimSpace(r.stdout)) {
			// The agent's log shares the console with the command's
			// output: it logs that it started just after it says it is
			// ready, when the command may have begun (a run read that line
			// as the record's first).
			if !strings.HasPrefix(line, "time=") {
				record = append(record, strings.TrimSpace(line))
			}
		}
		last := ""
		if len(record) > 0 {
			last = record[len(record)-1]
		}
		if len(record) != b.wantLines || !strings.Contains(last, " bootenv: ") || !strings.Contains(last, b.wantSays) {
			t.Errorf("%s: got the record %q, want %d lines, the last saying %q", b.name, record, b.wantLines, b.wantSays)
		}
		// Both copies valid again: a second Load finds nothing to repair.
		got, rep := boot.Load(extractBootenv(t, img, env))
		if rep != nil || *got != (boot.Env{Slot: "a"}) {
			t.Errorf("%s: the environment after the boot is %+v, repair %v, want slot a and two valid copies", b.name, *got, rep)
		}
	}
}

// bootenvOffset returns where the bootenv partition of the image starts.
func bootenvOffset(t *testing.T, img string) int64 {
	t.Helper()
	_, table := imagestest.Open(t, img)
	for _, p := range table.Partitions {
		if p.Name == "bootenv" {
			return int64(p.Start) * int64(table.LogicalSectorSize)
		}
	}
	t.Fatal("the image has no bootenv partition")
	return 0
}

// flipByte changes the byte at off in file.
func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// extractBootenv copies the two records of the environment at off in img
// into a file of their own, for boot.Load to check.
func extractBootenv(t *testing.T, img string, off int64) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 2*4096)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bootenv")
	testutil.WriteFile(t, p, string(b))
	return p
}
