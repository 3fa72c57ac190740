package boot

import (
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// TestFindWatchdog: a hardware watchdog is chosen over softdog whatever
// their numbers (in the guest softdog is watchdog0 and the i6300esb
// watchdog1, both virtual devices told apart by their identity).
func TestFindWatchdog(t *testing.T) {
	root := dirstest.SetRoot(t)
	if name, _ := findWatchdog(); name != "" {
		t.Fatalf("no watchdog: got %q", name)
	}
	class := filepath.Join(root, "sys/class/watchdog")
	add := func(name, identity string) {
		testutil.WriteFile(t, filepath.Join(root, "dev", name), "")
		testutil.WriteFile(t, filepath.Join(class, name, "identity"), identity+"\n")
	}
	add("watchdog0", "Software Watchdog")
	if name, id := findWatchdog(); name != "watchdog0" || id != "Software Watchdog" {
		t.Errorf("softdog alone: got %q %q, want watchdog0", name, id)
	}
	add("watchdog1", "i6300ESB timer")
	if name, id := findWatchdog(); name != "watchdog1" || id != "i6300ESB timer" {
		t.Errorf("softdog and hardware: got %q %q, want watchdog1, the hardware", name, id)
	}
	os.Remove(filepath.Join(root, "dev", "watchdog1"))
	if name, _ := findWatchdog(); name != "watchdog0" {
		t.Errorf("hardware without a node: got %q, want watchdog0", name)
	}
}
