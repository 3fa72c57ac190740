package uevent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// msg joins a header and fields as the kernel sends them.
func msg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00") + "\x00") }

const ttyUSB = "/devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0"

func TestParse(t *testing.T) {
	e, err := Parse(msg("add@"+ttyUSB, "ACTION=add", "DEVPATH="+ttyUSB, "SUBSYSTEM=tty", "MAJOR=188", "MINOR=0", "DEVNAME=ttyUSB0", "SEQNUM=2071"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Action != "add" || e.DevPath != ttyUSB || e.Subsystem != "tty" || e.Node() != "/dev/ttyUSB0" || e.Major != 188 || e.Minor != 0 || e.Seq != 2071 {
		t.Errorf("got %+v", e)
	}
	e, err = Parse(msg("remove@/devices/virtual/workqueue/x", "ACTION=remove", "DEVPATH=/devices/virtual/workqueue/x", "SUBSYSTEM=workqueue", "SEQNUM=9"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Node() != "" || e.Major != -1 {
		t.Errorf("a device without a node: got node %q major %d", e.Node(), e.Major)
	}
}

func TestParseRefuses(t *testing.T) {
	good := []string{"add@" + ttyUSB, "ACTION=add", "DEVPATH=" + ttyUSB, "SUBSYSTEM=tty"}
	with := func(extra ...string) []byte { return msg(append(append([]string{}, good...), extra...)...) }
	tests := map[string][]byte{
		"udev's re-broadcast":  append([]byte("libudev\x00\xfe\xed\xca\xfe"), with()...),
		"no header":            msg("ACTION=add", "DEVPATH="+ttyUSB),
		"header disagrees":     msg("remove@"+ttyUSB, "ACTION=add", "DEVPATH="+ttyUSB),
		"unknown action":       msg("explode@"+ttyUSB, "ACTION=explode", "DEVPATH="+ttyUSB),
		"devpath outside":      msg("add@/devices/../../etc", "ACTION=add", "DEVPATH=/devices/../../etc"),
		"devname escapes /dev": with("DEVNAME=../etc/shadow", "MAJOR=1", "MINOR=1"),
		"devname absolute":     with("DEVNAME=/etc/shadow"),
		"devname wildcard":     with("DEVNAME=tty*"),
		"major not a number":   with("DEVNAME=ttyUSB0", "MAJOR=x", "MINOR=0"),
		"major without minor":  with("DEVNAME=ttyUSB0", "MAJOR=188"),
		"negative minor":       with("DEVNAME=ttyUSB0", "MAJOR=188", "MINOR=-1"),
		"field twice":          with("SUBSYSTEM=usb"),
		"lowercase key":        with("devname=x"),
		"control character":    with("ID_MODEL=a\x1bb"),
		"too long":             append(with(), make([]byte, MaxMessage)...),
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := Parse(m)
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %+v, %v; want ErrInvalid", e, err)
			}
			if strings.Contains(err.Error(), "shadow") {
				t.Errorf("the error quotes the message: %v", err)
			}
		})
	}
}

// fakeSysfs builds the sysfs of an FTDI USB serial adapter on port 1 of
// the root hub of the xHCI controller at PCI 0000:00:04.0.
func fakeSysfs(t *testing.T) string {
	t.Helper()
	sys := t.TempDir()
	dirs := []struct {
		path, subsystem string
		files           map[string]string
	}{
		{"devices/pci0000:00/0000:00:04.0", "pci", nil},
		{"devices/pci0000:00/0000:00:04.0/usb1", "usb", map[string]string{"uevent": "DEVTYPE=usb_device\n", "idVendor": "1d6b\n", "idProduct": "0003\n"}},
		{"devices/pci0000:00/0000:00:04.0/usb1/1-1", "usb", map[string]string{"uevent": "MAJOR=189\nMINOR=1\nDEVNAME=bus/usb/001/002\nDEVTYPE=usb_device\n",
			"idVendor": "0403\n", "idProduct": "6001\n", "serial": "A1B2 C3\n", "manufacturer": "FTDI\n", "product": "FT232R USB UART\n"}},
		{"devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0", "usb", map[string]string{"uevent": "DEVTYPE=usb_interface\n", "bInterfaceNumber": "00\n"}},
		{"devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0/ttyUSB0", "usb-serial", map[string]string{"port_number": "0\n"}},
		{"devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0", "tty", map[string]string{"uevent": "MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n"}},
	}
	for _, d := range dirs {
		dir := filepath.Join(sys, d.path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(sys, "bus", d.subsystem), filepath.Join(dir, "subsystem")); err != nil {
			t.Fatal(err)
		}
		for name, data := range d.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return sys
}

func TestDescribeUSBSerial(t *testing.T) {
	sys := fakeSysfs(t)
	e, err := FromSysfs(sys, ttyUSB)
	if err != nil {
		t.Fatal(err)
	}
	if e.Subsystem != "tty" || e.Node() != "/dev/ttyUSB0" || e.Major != 188 {
		t.Errorf("FromSysfs: got %+v", e)
	}
	got := Describe(sys, e)
	want := map[string]string{
		PropBus:          "usb",
		PropVendor:       "0403",
		PropModel:        "6001",
		PropSerialShort:  "A1B2_C3",
		PropSerial:       "FTDI_FT232R_USB_UART_A1B2_C3",
		PropInterfaceNum: "00",
		PropPath:         "pci-0000:00:04.0-usb-0:1:1.0",
		PropLinks:        "/dev/serial/by-path/pci-0000:00:04.0-usb-0:1:1.0-port0 /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A1B2_C3-if00-port0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected property %s=%q", k, got[k])
		}
	}
}

func TestDescribeRealSerialPort(t *testing.T) {
	link, err := filepath.EvalSymlinks("/sys/class/tty/ttyS0")
	if err != nil {
		t.Skip("no /sys/class/tty/ttyS0 here")
	}
	devpath := strings.TrimPrefix(link, "/sys")
	e, err := FromSysfs("/sys", devpath)
	if err != nil {
		t.Fatal(err)
	}
	if e.Node() != "/dev/ttyS0" || e.Major != 4 || e.Minor != 64 || e.Subsystem != "tty" {
		t.Errorf("got %+v, want /dev/ttyS0 4:64 of tty", e)
	}
	if p := Describe("/sys", e); p[PropVendor] != "" || p[PropLinks] != "" {
		t.Errorf("a built-in serial port got USB properties or links: %v", p)
	}
}

// FuzzParse checks that a message is either refused or an event whose
// node stays below /dev and whose path stays below /sys/devices. Seeds are
// in testdata/.
func FuzzParse(f *testing.F) {
	testutil.AddSeeds(f, "testdata/*.uevent")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			if e != nil {
				t.Fatal("an event with an error")
			}
			return
		}
		if n := e.Node(); n != "" && (filepath.Clean(n) != n || !strings.HasPrefix(n, "/dev/") || n == "/dev/..") {
			t.Fatalf("node %q is not below /dev", n)
		}
		if filepath.Clean(e.DevPath) != e.DevPath || !strings.HasPrefix(e.DevPath, "/devices/") {
			t.Fatalf("devpath %q is not below /devices", e.DevPath)
		}
		if (e.Major < 0) != (e.Minor < 0) {
			t.Fatalf("major %d, minor %d", e.Major, e.Minor)
		}
	})
}
