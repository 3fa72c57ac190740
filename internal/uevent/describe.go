package uevent

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Properties Describe computes, named as udev names them.
const (
	PropVendor       = "ID_VENDOR_ID"
	PropModel        = "ID_MODEL_ID"
	PropSerial       = "ID_SERIAL"
	PropSerialShort  = "ID_SERIAL_SHORT"
	PropInterfaceNum = "ID_USB_INTERFACE_NUM"
	PropPath         = "ID_PATH"
	PropLinks        = "DEVLINKS"
	PropBus          = "ID_BUS"
)

// maxAttr bounds what is read of one sysfs attribute.
const maxAttr = 256

// serialLinked are the nodes udev gives /dev/serial links (60-serial.rules).
var serialLinked = regexp.MustCompile(`^tty(USB|ACM)[0-9]+$`)

// Describe returns the udev-like properties of the device of e, computed
// from the sysfs tree mounted at sysfs (/sys) by walking up e.DevPath, as
// udev's usb_id and path_id builtins and its serial rules would: the USB
// vendor and product ids, serial number and interface of the nearest USB
// device above it; the physical path (pci-0000:00:04.0-usb-0:1:1.0); and,
// for a USB serial node, the /dev/serial/by-id and by-path links udev
// would make (ttyUSB ports get -portN). What sysfs does not say is left
// out. Nothing is read outside sysfs/devices.
func Describe(sysfs string, e *Event) map[string]string {
	props := map[string]string{}
	var parts []string
	port, usbSeen := "", false
	for d := e.DevPath; strings.HasPrefix(d, "/devices/"); d = path.Dir(d) {
		full := filepath.Join(sysfs, d)
		sub := subsystemOf(full)
		devtype := ueventField(full, "DEVTYPE")
		name := path.Base(d)
		switch sub {
		case "usb-serial":
			if port == "" {
				port = attr(full, "port_number")
			}
		case "usb":
			if !usbSeen {
				// The first USB device or interface names the port chain;
				// the hubs above it add nothing (path_id skips them).
				if _, p, ok := strings.Cut(name, "-"); ok {
					parts = append(parts, "usb-0:"+p)
				}
				usbSeen = true
			}
			if devtype == "usb_interface" && props[PropInterfaceNum] == "" {
				props[PropInterfaceNum] = attr(full, "bInterfaceNumber")
			}
			if devtype == "usb_device" && props[PropVendor] == "" {
				usbDevice(full, props)
			}
		case "pci":
			parts = append(parts, "pci-"+name)
		case "platform":
			parts = append(parts, "platform-"+name)
		}
	}
	for k, v := range props {
		if v == "" {
			delete(props, k)
		}
	}
	if len(parts) > 0 {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		props[PropPath] = strings.Join(parts, "-")
	}
	if serialLinked.MatchString(path.Base(e.DevName)) {
		props[PropLinks] = serialLinks(props, port)
	}
	if props[PropLinks] == "" {
		delete(props, PropLinks)
	}
	return props
}

// usbDevice reads the ids and strings of the USB device at dir.
func usbDevice(dir string, props map[string]string) {
	vendor, model := attr(dir, "idVendor"), attr(dir, "idProduct")
	if vendor == "" {
		return
	}
	props[PropBus] = "usb"
	props[PropVendor], props[PropModel] = vendor, model
	serial := udevChars(attr(dir, "serial"))
	props[PropSerialShort] = serial
	v, m := udevChars(attr(dir, "manufacturer")), udevChars(attr(dir, "product"))
	if v == "" {
		v = vendor
	}
	if m == "" {
		m = model
	}
	id := v + "_" + m
	if serial != "" {
		id += "_" + serial
	}
	props[PropSerial] = id
}

// serialLinks are the /dev/serial links udev would make for a USB serial
// node, separated by spaces.
func serialLinks(props map[string]string, port string) string {
	suffix := ""
	if port != "" {
		suffix = "-port" + port
	}
	var links []string
	if p := props[PropPath]; p != "" {
		links = append(links, "/dev/serial/by-path/"+p+suffix)
	}
	if id, n := props[PropSerial], props[PropInterfaceNum]; id != "" && n != "" {
		links = append(links, "/dev/serial/by-id/usb-"+id+"-if"+n+suffix)
	}
	return strings.Join(links, " ")
}

// udevChars is what udev makes of a string for a property: whitespace
// trimmed, runs of it turned into '_', and every character but letters,
// digits and #+-.:=@_ turned into '_'.
func udevChars(s string) string {
	s = strings.Join(strings.Fields(s), "_")
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("#+-.:=@_", c) >= 0) {
			b[i] = '_'
		}
	}
	return string(b)
}

// subsystemOf names the subsystem of the sysfs device directory dir, from
// its subsystem link.
func subsystemOf(dir string) string {
	target, err := os.Readlink(filepath.Join(dir, "subsystem"))
	if err != nil {
		return ""
	}
	return path.Base(target)
}

// attr reads one short sysfs attribute of dir, trimmed, or "".
func attr(dir, name string) string {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, maxAttr)
	n, _ := f.Read(b)
	s := strings.TrimSpace(string(b[:n]))
	if !printable(s) {
		return ""
	}
	return s
}

// ueventField reads KEY=VALUE key from dir's uevent file.
func ueventField(dir, key string) string {
	f, err := os.Open(filepath.Join(dir, "uevent"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	return ""
}

// FromSysfs returns an "add" event for the device at devpath (below
// /devices) as it is now, read from its sysfs uevent file: what the agent
// uses for the devices present at its start, which sent their events
// before it listened.
func FromSysfs(sysfs, devpath string) (*Event, error) {
	dir := filepath.Join(sysfs, devpath)
	data, err := os.ReadFile(filepath.Join(dir, "uevent"))
	if err != nil {
		return nil, err
	}
	msg := []byte("add@" + devpath + "\x00ACTION=add\x00DEVPATH=" + devpath + "\x00")
	if sub := subsystemOf(dir); sub != "" {
		msg = append(msg, "SUBSYSTEM="+sub+"\x00"...)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			msg = append(msg, line+"\x00"...)
		}
	}
	return Parse(msg)
}
