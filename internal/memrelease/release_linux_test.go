package memrelease

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// exeResident returns the KiB of the test binary's droppable mappings
// that are resident.
func exeResident(t *testing.T) uint64 {
	t.Helper()
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	var kib uint64
	for _, m := range droppable(parseSmaps(data), unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
		kib += m.rss
	}
	return kib
}

// TestRelease runs Release in the test process: the pages of its binary
// that it maps go (all but the few that run again at once), and the
// process goes on working.
func TestRelease(t *testing.T) {
	before := exeResident(t)
	if before == 0 {
		t.Fatal("got no resident page of the test binary, want its code")
	}
	unmapped, err := Release()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	after := exeResident(t)
	if unmapped < before/2 {
		t.Errorf("Release: got %d KiB unmapped, want most of the %d KiB resident", unmapped, before)
	}
	if after >= before {
		t.Errorf("resident pages of the binary: got %d KiB after Release, want fewer than the %d KiB before", after, before)
	}
	// The data and the heap are untouched.
	m := map[string]int{"a": 1}
	if m["a"] != 1 || testGlobal != "still here" {
		t.Error("got data changed by Release")
	}
}

var testGlobal = "still here"
