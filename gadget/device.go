package gadget

import (
	"path"
	"slices"
	"strings"

	"paddock.dev/paddock/gadget/interfaces"
)

// Device is a device node as the kernel and udev describe it: what the
// agent's hotplug listener fills from kernel uevents and sysfs, and what
// a slot is matched against (Slot.Matches).
type Device struct {
	// Subsystem is the kernel's subsystem (tty, i2c-dev, spidev, gpio).
	Subsystem string `json:"subsystem,omitempty"`
	// Name is the device node, like /dev/ttyUSB0.
	Name         string `json:"name"`
	Major, Minor int64  `json:"-"`
	// Props are udev-like properties: PropVendor, PropModel, PropSerial,
	// PropPath and PropLinks, where known.
	Props map[string]string `json:"props,omitempty"`
}

// Properties of a Device, named as udev names them.
const (
	// PropVendor and PropModel are the USB vendor and product ids, four
	// hexadecimal digits (0403, 6001).
	PropVendor = "ID_VENDOR_ID"
	PropModel  = "ID_MODEL_ID"
	// PropSerial is the USB device's serial number string.
	PropSerial = "ID_SERIAL_SHORT"
	// PropSerialLong is udev's VENDOR_MODEL_SERIAL, which names the
	// /dev/serial/by-id link (usb-ID_SERIAL-ifNN...).
	PropSerialLong = "ID_SERIAL"
	// PropPath is the physical path (pci-0000:00:14.0-usb-0:2:1.0), which
	// names the /dev/serial/by-path link.
	PropPath = "ID_PATH"
	// PropLinks are the symlinks udev made to the node, separated by spaces.
	PropLinks = "DEVLINKS"
)

// Matches reports whether device d is (one of) the device(s) of slot s:
// its node is the slot's path or one of its paths; or it carries, as a
// link or by the properties that name such a link, the slot's
// /dev/serial/by-id or by-path link; or the slot names USB properties and
// d has all of them. A slot without a device node (pwm) matches nothing.
func (s *Slot) Matches(d Device) bool {
	if d.Name == "" {
		return false
	}
	if s.USBVendor != "" || s.USBProduct != "" || s.USBSerial != "" {
		return s.matchesUSB(d)
	}
	for _, n := range s.Nodes() {
		if n == d.Name || linkedTo(n, d) {
			return true
		}
	}
	return false
}

func (s *Slot) matchesUSB(d Device) bool {
	want := []struct{ attr, prop string }{{s.USBVendor, PropVendor}, {s.USBProduct, PropModel}, {s.USBSerial, PropSerial}}
	for _, w := range want {
		if w.attr == "" {
			continue
		}
		got, ok := d.Props[w.prop]
		if !ok {
			return false
		}
		if w.prop == PropSerial && got != w.attr || w.prop != PropSerial && !strings.EqualFold(got, w.attr) {
			return false
		}
	}
	return true
}

// linkedTo reports whether the /dev/serial link n names device d: d's
// links hold it, or its name is what udev derives from d's properties
// (by-id: usb-ID_SERIAL-ifNN[-portN]; by-path: ID_PATH[-portN]).
func linkedTo(n string, d Device) bool {
	if slices.Contains(strings.Fields(d.Props[PropLinks]), n) {
		return true
	}
	dir, base := path.Split(n)
	switch dir {
	case "/dev/serial/by-id/":
		id := d.Props[PropSerialLong]
		return id != "" && strings.HasPrefix(base, "usb-"+id+"-if")
	case "/dev/serial/by-path/":
		p := d.Props[PropPath]
		return p != "" && (base == p || strings.HasPrefix(base, p+"-port"))
	}
	return false
}

// Nodes returns the device nodes the slot names by its attributes (not
// those matched by USB properties), as its interface in the catalog
// derives them; nil for an interface without slots.
func (s *Slot) Nodes() []string {
	i, ok := interfaces.Lookup(s.Interface)
	if !ok || i.Slot == nil || i.Slot.Grant == nil {
		return nil
	}
	return i.Slot.Grant(s.SlotAttrs, nil).Nodes
}
