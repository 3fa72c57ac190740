package gadget

import (
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/gadget/interfaces"
)

var (
	plugRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9])*:[a-z][a-z0-9-]*$`)
	})
	// devPathRe keeps device paths to characters that AppArmor rules and
	// udev link names hold as they are.
	devPathRe   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/dev/[A-Za-z0-9._:+/-]+$`) })
	usbIDRe     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Fa-f]{4}$`) })
	usbSerialRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._:+-]{1,64}$`) })
)

// slotAttrs are every attribute a slot may have; the catalog says which
// ones each interface takes.
var slotAttrs = []string{"interface", "path", "paths", "chip", "number", "usb-vendor", "usb-product", "usb-serial"}

// Interfaces returns the interfaces a gadget slot may have: those of the
// catalog with hardware slots, sorted.
func Interfaces() []string {
	var out []string
	for _, i := range interfaces.All() {
		if i.Slot != nil {
			out = append(out, i.Name)
		}
	}
	return out
}

func (p *parser) slots(n *yaml.Node, field string, g *Gadget) error {
	g.Slots = make(map[string]*Slot)
	return p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
		name, err := p.name(k, field, "slot")
		if err != nil {
			return err
		}
		s := &Slot{Name: name}
		if err := p.slot(k, v, field, s); err != nil {
			return err
		}
		g.Slots[name] = s
		return nil
	})
}

// slot parses the slot whose key is key; errors about the whole slot point
// at key.
func (p *parser) slot(key, n *yaml.Node, prefix string, s *Slot) error {
	set := make(map[string]*yaml.Node)
	err := p.Fields(n, prefix, slotAttrs, func(attr, field string, k, v *yaml.Node) error {
		set[attr] = k
		return p.slotAttr(attr, field, v, s)
	})
	if err != nil {
		return err
	}
	if s.Interface == "" {
		return p.Errorf(key, prefix+".interface", "missing (want one of %s)", strings.Join(Interfaces(), ", "))
	}
	i, _ := interfaces.Lookup(s.Interface)
	kind := i.Slot
	takes := slices.Concat(kind.Attrs, kind.OneOf, kind.Optional)
	for _, attr := range slotAttrs[1:] {
		if k := set[attr]; k != nil && !slices.Contains(takes, attr) {
			return p.Errorf(k, prefix+"."+attr, "a %s slot takes %s, not %s", s.Interface, strings.Join(takes, ", "), attr)
		}
	}
	for _, attr := range kind.Attrs {
		if set[attr] == nil {
			return p.Errorf(key, prefix+"."+attr, "missing (a %s slot takes %s)", s.Interface, strings.Join(takes, ", "))
		}
	}
	if err := p.alternatives(key, prefix, s, kind, set); err != nil {
		return err
	}
	if k := set["paths"]; k != nil && len(s.Paths) == 0 {
		return p.Errorf(k, prefix+".paths", "empty (list the device nodes, like /dev/foo0)")
	}
	if re := kind.Nodes; re != nil && set["path"] != nil && !re.MatchString(s.Path) {
		return p.Errorf(set["path"], prefix+".path", "%q is not a %s device (like %s)", s.Path, s.Interface, kind.Example)
	}
	return nil
}

// oneOf checks that the slot has exactly one of the alternatives its
// interface offers (a serial port by path or by USB properties), and that
// optional USB properties come with the vendor.
func (p *parser) alternatives(key *yaml.Node, prefix string, s *Slot, kind *interfaces.SlotKind, set map[string]*yaml.Node) error {
	var given []string
	for _, attr := range kind.OneOf {
		if set[attr] != nil {
			given = append(given, attr)
		}
	}
	switch {
	case len(kind.OneOf) > 0 && len(given) == 0:
		return p.Errorf(key, prefix, "a %s slot needs %s", s.Interface, strings.Join(kind.OneOf, " or "))
	case len(given) > 1:
		return p.Errorf(set[given[1]], prefix+"."+given[1], "a %s slot takes %s, not both", s.Interface, strings.Join(given, " or "))
	}
	for _, attr := range []string{"usb-product", "usb-serial"} {
		if k := set[attr]; k != nil && set["usb-vendor"] == nil {
			return p.Errorf(k, prefix+"."+attr, "needs usb-vendor too (the USB vendor id, like 0403)")
		}
	}
	return nil
}

// slotAttr parses the attribute attr of a slot into s.
func (p *parser) slotAttr(attr, field string, v *yaml.Node, s *Slot) error {
	var err error
	switch attr {
	case "interface":
		s.Interface, err = p.oneOf(v, field, "interface", Interfaces())
	case "path":
		s.Path, err = p.devicePath(v, field)
	case "paths":
		err = p.Seq(v, field, func(_ int, field string, v *yaml.Node) error {
			d, err := p.devicePath(v, field)
			s.Paths = append(s.Paths, d)
			return err
		})
	case "chip":
		s.Chip, err = p.number(v, field)
	case "number":
		s.Number, err = p.number(v, field)
	case "usb-vendor":
		s.USBVendor, err = p.usb(v, field, usbIDRe(), "a USB vendor id of four hexadecimal digits, like 0403")
	case "usb-product":
		s.USBProduct, err = p.usb(v, field, usbIDRe(), "a USB product id of four hexadecimal digits, like 6001")
	case "usb-serial":
		s.USBSerial, err = p.usb(v, field, usbSerialRe(), "the USB serial number, up to 64 letters, digits and ._:+-")
	}
	return err
}

// usb parses a USB property of a slot; ids are kept in lower case, as
// udev and sysfs write them.
func (p *parser) usb(n *yaml.Node, field string, re *regexp.Regexp, want string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if !re.MatchString(s) {
		return "", p.Errorf(n, field, "invalid value %q (want %s)", s, want)
	}
	if re == usbIDRe() {
		s = strings.ToLower(s)
	}
	return s, nil
}

// devicePath accepts a clean absolute path under /dev/.
func (p *parser) devicePath(n *yaml.Node, field string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > maxPathLen || !strings.HasPrefix(s, "/dev/") || path.Clean(s) != s || !devPathRe().MatchString(s) {
		return "", p.Errorf(n, field, "%q is not a device path (want a clean path under /dev/ of letters, digits and ._:+-, without wildcards)", s)
	}
	return s, nil
}

func (p *parser) number(n *yaml.Node, field string) (*int, error) {
	v, err := p.Int(n, field, maxSlotNum)
	if err != nil {
		return nil, err
	}
	i := int(v)
	return &i, nil
}

// connections parses the connections made when an app arrives, in either
// form: a mapping of APP:PLUG to SLOT (hello:serial: serial1), or a list of
// {plug: APP:PLUG, slot: SLOT}. Parse checks the slots exist once all slots
// are known.
func (p *parser) connections(n *yaml.Node, field string, g *Gadget) error {
	if n.Kind == yaml.MappingNode {
		return p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
			if !plugRe().MatchString(key) {
				return p.Errorf(k, field, "invalid plug %q (want APP:PLUG, like hello:serial)", key)
			}
			slot, err := p.connSlot(v, field)
			if err != nil {
				return err
			}
			return p.addConnection(g, Connection{Plug: key, Slot: slot}, v, field)
		})
	}
	return p.Seq(n, field, func(_ int, prefix string, v *yaml.Node) error {
		var c Connection
		err := p.Fields(v, prefix, []string{"plug", "slot"}, func(key, field string, k, v *yaml.Node) error {
			switch key {
			case "plug":
				s, err := p.Str(v, field)
				if err != nil {
					return err
				}
				if !plugRe().MatchString(s) {
					return p.Errorf(v, field, "invalid plug %q (want APP:PLUG, like hello:serial)", s)
				}
				c.Plug = s
			case "slot":
				s, err := p.connSlot(v, field)
				if err != nil {
					return err
				}
				c.Slot = s
			}
			return nil
		})
		if err != nil {
			return err
		}
		if c.Plug == "" || c.Slot == "" {
			return p.Errorf(v, prefix, "a connection needs plug and slot")
		}
		return p.addConnection(g, c, v, prefix+".slot")
	})
}

// connSlot parses the slot of a connection: a slot of the gadget, or
// APP:SLOT for an app's content slot.
func (p *parser) connSlot(v *yaml.Node, field string) (string, error) {
	s, err := p.Str(v, field)
	if err != nil {
		return "", err
	}
	if !nameRe().MatchString(s) && !plugRe().MatchString(s) {
		return "", p.Errorf(v, field, "invalid slot %q (want a slot of the gadget, or APP:SLOT for an app's content slot)", s)
	}
	return s, nil
}

// addConnection adds c, refusing a duplicate; field names its slot in
// later errors.
func (p *parser) addConnection(g *Gadget, c Connection, v *yaml.Node, field string) error {
	if slices.Contains(g.Connections, c) {
		return p.Errorf(v, field, "duplicate connection of %s to %s", c.Plug, c.Slot)
	}
	g.Connections = append(g.Connections, c)
	p.connLines = append(p.connLines, v.Line)
	p.connFields = append(p.connFields, field)
	return nil
}

// defaults parses app name → key → any YAML value without anchors.
func (p *parser) defaults(n *yaml.Node, field string, g *Gadget) error {
	g.Defaults = make(map[string]map[string]any)
	return p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
		if !appNameRe().MatchString(key) {
			return p.Errorf(k, field, "invalid app name %q", key)
		}
		conf := make(map[string]any)
		err := p.Fields(v, field, nil, func(key, field string, k, v *yaml.Node) error {
			val, err := p.value(v, field, 0)
			conf[key] = val
			return err
		})
		g.Defaults[key] = conf
		return err
	})
}

var appNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9])*$`) })

// value turns a YAML node into plain Go values (string, int, float, bool,
// nil, []any, map[string]any), refusing anchors, tags and deep nesting.
func (p *parser) value(n *yaml.Node, field string, depth int) (any, error) {
	p.nvalues++
	if p.nvalues > maxDefaults {
		return nil, p.Errorf(n, field, "more than %d default values", maxDefaults)
	}
	if depth > maxDepth {
		return nil, p.Errorf(n, field, "nested deeper than %d levels", maxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, p.Errorf(n, field, "YAML anchors and aliases are not supported")
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any)
		err := p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
			val, err := p.value(v, field, depth+1)
			m[key] = val
			return err
		})
		return m, err
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		err := p.Seq(n, field, func(_ int, field string, v *yaml.Node) error {
			val, err := p.value(v, field, depth+1)
			l = append(l, val)
			return err
		})
		return l, err
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!null":
	default:
		return nil, p.Errorf(n, field, "unsupported value tagged %s", n.Tag)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, p.Errorf(n, field, "invalid value %q", n.Value)
	}
	return v, nil
}
