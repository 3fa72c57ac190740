// Package uevent reads the kernel's device events and describes devices
// the way udev would, without udev.
//
// The source is the kernel itself: a NETLINK_KOBJECT_UEVENT socket bound to
// the kernel's multicast group (1), which carries one message per device
// change ("add@/devices/...", then KEY=VALUE fields). A paddock device runs
// no udevd, so nothing re-broadcasts enriched events (udev's group 2, with
// the "libudev" header) and nothing makes /dev/serial/by-id or by-path
// links: the properties udev would compute for them (ID_VENDOR_ID,
// ID_MODEL_ID, ID_SERIAL, ID_SERIAL_SHORT, ID_USB_INTERFACE_NUM, ID_PATH
// and the DEVLINKS it would make) are computed here from sysfs, by walking
// up the device's path (see Describe). Messages from any sender but the
// kernel are dropped.
package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Event is one kernel uevent.
type Event struct {
	// Action is add, remove, change, move, online, offline, bind or unbind.
	Action string
	// DevPath is the device's path below /sys, like /devices/pci0000:00/...
	DevPath string
	// Subsystem is the kernel's subsystem (tty, usb, i2c-dev, ...).
	Subsystem string
	// DevName is the node below /dev the kernel names (ttyUSB0, bus/usb/001/002),
	// or "" for a device without a node.
	DevName string
	// Major and Minor are the node's numbers, -1 without a node.
	Major, Minor int64
	// Seq is the kernel's sequence number of the event.
	Seq uint64
	// Env holds every field of the message, the above included.
	Env map[string]string
}

// Node returns the event's device node, /dev/DEVNAME, or "".
func (e *Event) Node() string {
	if e.DevName == "" {
		return ""
	}
	return "/dev/" + e.DevName
}

// Limits of a message: the kernel's buffer is 2048 bytes
// (UEVENT_BUFFER_SIZE), with at most 64 fields (UEVENT_NUM_ENVP).
const (
	MaxMessage = 8192
	maxFields  = 64
)

// ErrInvalid is wrapped by Parse for a message that is not a kernel uevent.
var ErrInvalid = errors.New("invalid uevent")

var actions = map[string]bool{"add": true, "remove": true, "change": true, "move": true, "online": true, "offline": true, "bind": true, "unbind": true}

// Parse decodes one kernel uevent message: a header "ACTION@DEVPATH", then
// NUL-separated KEY=VALUE fields. It refuses udev's re-broadcasts (the
// "libudev" header), a header that disagrees with the fields, names that
// could leave /dev or /sys, and numbers that are not. Its errors never
// quote the message.
func Parse(msg []byte) (*Event, error) {
	if len(msg) > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(msg), MaxMessage)
	}
	fields := bytes.Split(bytes.TrimRight(msg, "\x00"), []byte{0})
	head := string(fields[0])
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || head == "libudev" {
		return nil, fmt.Errorf("%w: no ACTION@DEVPATH header", ErrInvalid)
	}
	if len(fields)-1 > maxFields {
		return nil, fmt.Errorf("%w: more than %d fields", ErrInvalid, maxFields)
	}
	e := &Event{Major: -1, Minor: -1, Env: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || !validKey(k) || !printable(v) {
			return nil, fmt.Errorf("%w: a field is not KEY=VALUE", ErrInvalid)
		}
		if _, dup := e.Env[k]; dup {
			return nil, fmt.Errorf("%w: field %s twice", ErrInvalid, k)
		}
		e.Env[k] = v
	}
	e.Action, e.DevPath, e.Subsystem, e.DevName = e.Env["ACTION"], e.Env["DEVPATH"], e.Env["SUBSYSTEM"], e.Env["DEVNAME"]
	if e.Action != action || e.DevPath != devpath {
		return nil, fmt.Errorf("%w: the header does not match ACTION and DEVPATH", ErrInvalid)
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return e, nil
}

// check validates the fields an agent acts on, and fills the numbers.
func (e *Event) check() error {
	if !actions[e.Action] {
		return errors.New("unknown action")
	}
	if !strings.HasPrefix(e.DevPath, "/devices/") || path.Clean(e.DevPath) != e.DevPath {
		return errors.New("DEVPATH is not a clean path below /devices")
	}
	if e.Subsystem != "" && !validName(e.Subsystem) {
		return errors.New("invalid SUBSYSTEM")
	}
	if e.DevName != "" {
		if path.IsAbs(e.DevName) || path.Clean(e.DevName) != e.DevName || e.DevName == "." || strings.HasPrefix(e.DevName, "..") || strings.ContainsAny(e.DevName, " *?[\\") {
			return errors.New("DEVNAME is not a clean path below /dev")
		}
	}
	maj, hasMaj := e.Env["MAJOR"]
	min, hasMin := e.Env["MINOR"]
	if hasMaj != hasMin {
		return errors.New("MAJOR without MINOR")
	}
	if hasMaj {
		var err1, err2 error
		e.Major, err1 = strconv.ParseInt(maj, 10, 32)
		e.Minor, err2 = strconv.ParseInt(min, 10, 32)
		if err1 != nil || err2 != nil || e.Major < 0 || e.Minor < 0 {
			return errors.New("MAJOR or MINOR is not a device number")
		}
	}
	if s, ok := e.Env["SEQNUM"]; ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("SEQNUM is not a number")
		}
		e.Seq = n
	}
	return nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
