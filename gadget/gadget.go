// Package gadget describes a device's board: the types of gadget.yaml and a
// strict parser for it. A gadget holds the disk layout that images are
// built from (volumes of structures: partitions), the hardware slots the
// board offers to apps (serial ports, GPIO lines, I2C and SPI buses, PWM
// channels, other device nodes), the connections made at first boot and
// default configuration. Every parse error names the file, the line and
// the field.
package gadget

import (
	"fmt"
	"strings"

	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/yamlstrict"
)

// File is the name of the gadget description inside a gadget directory.
const File = "gadget.yaml"

// MaxSize is the largest gadget.yaml Parse accepts, in bytes.
const MaxSize = 256 << 10

// Partition table schemas.
const (
	SchemaGPT = "gpt"
	SchemaMBR = "mbr"
)

// Roles of structures: what the boot stage and the agent use them for. The
// boot stage finds partitions by name (package internal/partition names
// them), so each role fixes the name of its structure: system-boot is
// "boot", system-bootenv "bootenv", system-base "base-a" and "base-b",
// system-data "data".
const (
	RoleBoot    = "system-boot"
	RoleBootenv = "system-bootenv"
	RoleBase    = "system-base"
	RoleData    = "system-data"
)

// Filesystems of structures; none is a raw partition.
const (
	FilesystemVFAT = "vfat"
	FilesystemExt4 = "ext4"
	FilesystemNone = "none"
)

// Gadget is a parsed gadget.yaml.
type Gadget struct {
	Volumes     map[string]*Volume `json:"volumes"`
	Slots       map[string]*Slot   `json:"slots,omitempty"`
	Connections []Connection       `json:"connections,omitempty"`
	// Defaults holds configuration per app, applied when the app is
	// first installed: app name → key → value (any YAML value).
	Defaults map[string]map[string]any `json:"defaults,omitempty"`

	filename string
}

// Volume is one disk: a partition table and its structures, in disk order.
type Volume struct {
	Name       string       `json:"name"`
	Schema     string       `json:"schema"`
	Structures []*Structure `json:"structures"`
}

// Structure is one partition of a volume.
type Structure struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
	// Type is the partition type as written: a GPT type GUID, an MBR type
	// byte in hex (83) or a shorthand (see TypeShorthands).
	Type       string     `json:"type"`
	Size       int64      `json:"size"` // bytes; written "64M" or a plain number
	Filesystem string     `json:"filesystem"`
	Content    []*Content `json:"content,omitempty"`
}

// Content is something the image builder puts into a structure: a file
// from the gadget directory copied to a path in a vfat or ext4 structure
// (Source and Target), or a raw image written into a structure without a
// filesystem (Image).
type Content struct {
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	Image  string `json:"image,omitempty"`
}

// Slot is a piece of hardware the board offers to apps. Which attributes
// are set depends on the interface, whose entry in the catalog
// (gadget/interfaces) says which it takes: Path for serial-port (or its
// USB properties), i2c and spi; Chip and Number for gpio (/dev/gpiochipCHIP,
// line NUMBER) and pwm (pwmchipCHIP, channel NUMBER); Paths for
// custom-device.
type Slot struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	interfaces.SlotAttrs
}

// Connection connects an app's plug to a slot when the app arrives.
type Connection struct {
	// Plug is APP:PLUG.
	Plug string `json:"plug"`
	// Slot is a slot of the gadget, or APP:SLOT for a slot an app
	// declares in its app.yaml (content), which is checked when both apps
	// are there.
	Slot string `json:"slot"`
}

// AppSlot reports whether the connection's slot is an app's (APP:SLOT).
func (c Connection) AppSlot() bool { return strings.Contains(c.Slot, ":") }

// Filename returns the name the gadget was parsed under.
func (g *Gadget) Filename() string { return g.filename }

// Volume returns the gadget's only volume (Parse makes sure there is
// exactly one).
func (g *Gadget) Volume() *Volume {
	for _, v := range g.Volumes {
		return v
	}
	return nil
}

// Structure returns the structure called name, or nil.
func (v *Volume) Structure(name string) *Structure {
	for _, s := range v.Structures {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// TypeShorthands maps the shorthand partition types to GPT type GUIDs.
var TypeShorthands = map[string]string{
	"esp":        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
	"linux":      "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
	"basic-data": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
	"bios-boot":  "21686148-6449-6E6F-744E-656564454649",
}

// mbrShorthands maps the shorthand partition types to MBR type bytes.
var mbrShorthands = map[string]byte{
	"esp":        0xEF,
	"linux":      0x83,
	"basic-data": 0x0C,
}

// GPTType returns the GPT type GUID of the structure, in upper case.
func (s *Structure) GPTType() string {
	if g, ok := TypeShorthands[s.Type]; ok {
		return g
	}
	return strings.ToUpper(s.Type)
}

// MBRType returns the MBR partition type byte of the structure.
func (s *Structure) MBRType() byte {
	if b, ok := mbrShorthands[s.Type]; ok {
		return b
	}
	var b byte
	fmt.Sscanf(s.Type, "%x", &b)
	return b
}

// Error is a problem in a gadget.yaml, located by file, line and field,
// such as volumes.pc.structures[1].size.
type Error = yamlstrict.Error
