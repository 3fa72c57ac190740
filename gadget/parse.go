package gadget

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/yamlstrict"
)

var (
	nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*$`) })
	guidRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	})
	mbrTypeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Fa-f]{2}$`) })
)

const (
	maxNameLen  = 36 // a GPT partition name holds 36 UTF-16 units
	maxDepth    = 16 // of default values
	maxSlotNum  = 1 << 20
	maxPathLen  = 4096
	maxDefaults = 10000 // values in defaults, all apps together
)

// parser walks the YAML node tree by hand, so that it sees duplicate keys,
// unknown fields and line numbers, and never panics on odd input.
type parser struct {
	*yamlstrict.Parser
	nvalues    int      // values parsed under defaults, to bound the work
	connLines  []int    // the line of each connection, for later errors
	connFields []string // the field of each connection's slot
}

// ReadDir reads and parses DIR/gadget.yaml.
func ReadDir(dir string) (*Gadget, error) {
	name := filepath.Join(dir, File)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read gadget: %w", err)
	}
	defer f.Close()
	// One byte over the limit lets Parse say the file is too large.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read gadget: %w", err)
	}
	return Parse(data, name)
}

// Parse parses and checks the gadget.yaml data read from filename (used
// only in errors). It rejects unknown fields, duplicate keys, anchors and
// invalid values, and checks the layout: one volume, unique names, the
// names and filesystems that roles require, slots whose attributes fit
// their interface, and connections to slots that exist.
func Parse(data []byte, filename string) (*Gadget, error) {
	p := &parser{Parser: yamlstrict.New(filename)}
	if len(data) > MaxSize {
		return nil, p.Errorf(nil, "", "gadget.yaml is %d bytes, more than the limit of %d", len(data), MaxSize)
	}
	root, err := p.Document(data, "gadget.yaml", "volumes")
	if err != nil {
		return nil, err
	}
	g := &Gadget{filename: filename}
	if err := p.top(root, g); err != nil {
		return nil, err
	}
	return g, nil
}

// ParseSize parses a size as gadget.yaml writes it: a number of bytes with
// an optional K, M, G or T suffix (powers of 1024), like 64M.
func ParseSize(s string) (int64, error) {
	return yamlstrict.ParseSize(s)
}

func (p *parser) name(n *yaml.Node, field, what string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > maxNameLen || !nameRe().MatchString(s) {
		return "", p.Errorf(n, field, "invalid %s name %q (want lowercase letters, digits and dashes, starting with a letter, at most %d characters)", what, s, maxNameLen)
	}
	return s, nil
}

func (p *parser) top(root *yaml.Node, g *Gadget) error {
	known := []string{"volumes", "slots", "connections", "defaults"}
	var volumes *yaml.Node
	err := p.Fields(root, "", known, func(key, field string, k, v *yaml.Node) error {
		switch key {
		case "volumes":
			volumes = k
			return p.volumes(v, field, g)
		case "slots":
			return p.slots(v, field, g)
		case "connections":
			return p.connections(v, field, g)
		case "defaults":
			return p.defaults(v, field, g)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(g.Volumes) != 1 {
		return p.Errorf(volumes, "volumes", "got %d volumes, want exactly one (the disk images are built from)", len(g.Volumes))
	}
	for i, c := range g.Connections {
		if g.Slots[c.Slot] == nil && !c.AppSlot() {
			return &Error{File: p.File, Line: p.connLines[i], Field: p.connFields[i],
				Msg: fmt.Sprintf("no slot %q (declare it under slots)", c.Slot)}
		}
	}
	return nil
}
