package boot

import (
	"os"
	"path/filepath"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// TestFindWatchdog: a hardware watchdog (a parent device in sysfs) is
// chosen over softdog whatever their numbers; the identity file is
// optional (CONFIG_WATCHDOG_SYSFS is not set in Debian's kernel, and the
// first version, which needed it, found no watchdog in the guest).
func TestFindWatchdog(t *testing.T) {
	root := dirstest.SetRoot(t)
	if name, _ := findWatchdog(); name != "" {
		t.Fatalf("no watchdog: got %q", name)
	}
	class := filepath.Join(root, "sys/class/watchdog")
	add := func(name, driver string) {
		testutil.WriteFile(t, filepath.Join(root, "dev", name), "")
		os.MkdirAll(filepath.Join(class, name), 0o755)
		if driver != "" {
			os.MkdirAll(filepath.Join(class, name, "device"), 0o755)
			os.Symlink("../../../bus/pci/drivers/"+driver, filepath.Join(class, name, "device/driver"))
		}
	}
	add("watchdog0", "") // softdog, no identity file
	if name, what := findWatchdog(); name != "watchdog0" || what != "softdog" {
		t.Errorf("softdog alone: got %q %q, want watchdog0 softdog", name, what)
	}
	add("watchdog1", "i6300ESB timer")
	if name, what := findWatchdog(); name != "watchdog1" || what != "i6300ESB timer" {
		t.Errorf("softdog and hardware: got %q %q, want watchdog1, the hardware", name, what)
	}
}
