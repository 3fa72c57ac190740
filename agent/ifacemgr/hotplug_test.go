package ifacemgr

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/internal/uevent"
)

// usbSysfs makes the sysfs of an FTDI adapter (0403:6001) as ttyUSB0.
func usbSysfs(t *testing.T) (string, string) {
	t.Helper()
	sys := t.TempDir()
	usb := "devices/pci0000:00/0000:00:04.0/usb1/1-1"
	tty := usb + "/1-1:1.0/ttyUSB0/tty/ttyUSB0"
	testutil.WriteTree(t, sys, map[string]string{
		usb + "/uevent":                   "DEVTYPE=usb_device\n",
		usb + "/idVendor":                 "0403\n",
		usb + "/idProduct":                "6001\n",
		usb + "/serial":                   "FT1\n",
		usb + "/1-1:1.0/uevent":           "DEVTYPE=usb_interface\n",
		usb + "/1-1:1.0/bInterfaceNumber": "00\n",
		tty + "/uevent":                   "MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n",
	})
	for _, d := range []string{usb, usb + "/1-1:1.0"} {
		testutil.Symlink(t, "../../../../bus/usb", filepath.Join(sys, d, "subsystem"))
	}
	testutil.Symlink(t, "../../../../bus/tty", filepath.Join(sys, tty, "subsystem"))
	return sys, "/" + tty
}

func event(t *testing.T, action, devpath, devname string, major, minor int) *uevent.Event {
	t.Helper()
	parts := []string{action + "@" + devpath, "ACTION=" + action, "DEVPATH=" + devpath, "SUBSYSTEM=tty",
		"MAJOR=" + itoa(major), "MINOR=" + itoa(minor), "DEVNAME=" + devname}
	e, err := uevent.Parse([]byte(strings.Join(parts, "\x00")))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestHotplugGrantsMatchingDevice plugs a USB serial adapter that a slot
// matches by its USB ids, with a plug connected to that slot: the app's
// policies are resolved again with the device; an adapter the slot does
// not match changes nothing; the removal resolves them again without it.
func TestHotplugGrantsMatchingDevice(t *testing.T) {
	sys, devpath := usbSysfs(t)
	testutil.Replace(t, &sysfs, sys)
	g := gadgetWith(t, `slots:
  adapter: {interface: serial-port, usb-vendor: "0403", usb-product: "6001"}
  serial1: {interface: serial-port, path: /dev/ttyS1}
connections:
  - {plug: "sensor:serial-port", slot: adapter}
`)
	f := newFixture(t, g)
	h := &hotplug{devices: map[string]gadget.Device{}}
	f.m.watchDevices(h)
	t.Cleanup(func() { hotplugs.Delete(f.m) })
	f.apps.install("sensor", 1, "serial-port")
	f.apps.install("other", 1, "serial-port")
	f.ensure()
	devices := func() []string {
		var out []string
		for _, c := range f.apps.conns("sensor", f.apps.apps["sensor"], g) {
			for _, d := range c.Devices {
				out = append(out, c.Plug+"="+d.Name)
			}
		}
		return out
	}
	regens := f.apps.regens

	f.m.deviceEvent(h, event(t, "add", devpath, "ttyUSB0", 188, 0))
	if f.apps.regens != regens+1 {
		t.Fatalf("adapter plugged: %d regenerations, want 1", f.apps.regens-regens)
	}
	if got := strings.Join(devices(), " "); got != "serial-port=/dev/ttyUSB0" {
		t.Errorf("sensor's connections after the plug: got devices %q, want serial-port=/dev/ttyUSB0", got)
	}
	// A built-in port nobody's slot matches by USB ids, and no plug is
	// connected to serial1: nothing to do.
	f.m.deviceEvent(h, event(t, "add", "/devices/pnp0/00:03/tty/ttyS3", "ttyS3", 4, 67))
	if f.apps.regens != regens+1 {
		t.Errorf("an unmatched device regenerated policies")
	}
	os.RemoveAll(filepath.Join(sys, "devices")) // gone from sysfs before its event
	f.m.deviceEvent(h, event(t, "remove", devpath, "ttyUSB0", 188, 0))
	if f.apps.regens != regens+2 {
		t.Fatalf("adapter removed: %d regenerations in all, want 2", f.apps.regens-regens)
	}
	if got := devices(); len(got) != 0 {
		t.Errorf("sensor's connections after the removal: got devices %q, want none", got)
	}
}
