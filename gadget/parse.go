package gadget

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
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
	file      string
	nvalues   int   // values parsed under defaults, to bound the work
	connLines []int // the line of each connection, for later errors
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) error {
	e := &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
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
	p := &parser{file: filename}
	if len(data) > MaxSize {
		return nil, p.errorf(nil, "", "gadget.yaml is %d bytes, more than the limit of %d", len(data), MaxSize)
	}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	g := &Gadget{filename: filename}
	if err := p.top(root, g); err != nil {
		return nil, err
	}
	return g, nil
}

// document decodes exactly one YAML document and returns its top mapping.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errorf(nil, "", "gadget.yaml is empty (it needs at least volumes)")
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, p.errorf(&extra, "", "gadget.yaml must hold a single YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errorf(&doc, "", "gadget.yaml must be a YAML mapping")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "", "gadget.yaml must be a mapping of fields, not a %s", kindName(root))
	}
	return root, nil
}

// yamlError turns a syntax error ("yaml: line 3: ...") into our format.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	return &Error{File: p.file, Line: line, Msg: "invalid YAML: " + msg}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// fields iterates over a mapping, rejecting aliases, non-string keys,
// duplicate keys and keys not in known (when known is non-nil). It calls fn
// with each key, its dotted field path and the value node.
func (p *parser) fields(n *yaml.Node, prefix string, known []string, fn func(key, field string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, prefix, "must be a mapping, not a %s", kindName(n))
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			return p.errorf(k, prefix, "YAML merge keys (<<) are not supported")
		}
		if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool") {
			return p.errorf(k, prefix, "keys must be plain strings")
		}
		field := k.Value
		if prefix != "" {
			field = prefix + "." + k.Value
		}
		if seen[k.Value] {
			return p.errorf(k, field, "duplicate key")
		}
		seen[k.Value] = true
		if known != nil && !slices.Contains(known, k.Value) {
			return p.errorf(k, field, "unknown field (known fields: %s)", strings.Join(known, ", "))
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return p.errorf(v, field, "YAML anchors and aliases are not supported")
		}
		if err := fn(k.Value, field, k, v); err != nil {
			return err
		}
	}
	return nil
}

// list iterates over a sequence; a null value is an empty list.
func (p *parser) list(n *yaml.Node, field string, fn func(i int, field string, v *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return p.errorf(n, field, "must be a list, not a %s", kindName(n))
	}
	for i, v := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return p.errorf(v, f, "YAML anchors and aliases are not supported")
		}
		if err := fn(i, f, v); err != nil {
			return err
		}
	}
	return nil
}

// str returns the text of a scalar; null is the empty string.
func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errorf(n, field, "must be a string, not a %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	if n.Tag == "!!binary" || strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return "", p.errorf(n, field, "must be a plain string, not tagged %s", n.Tag)
	}
	return n.Value, nil
}

// integer returns a non-negative integer scalar of at most max.
func (p *parser) integer(n *yaml.Node, field string, max int64) (int64, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.errorf(n, field, "must be an integer, not %q", n.Value)
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, p.errorf(n, field, "invalid integer %q", n.Value)
	}
	if v < 0 {
		return 0, p.errorf(n, field, "must not be negative, got %d", v)
	}
	if v > max {
		return 0, p.errorf(n, field, "must be at most %d, got %d", max, v)
	}
	return v, nil
}

// size parses "64M", "512K", "1G", "2T" (powers of 1024) or plain bytes.
func (p *parser) size(n *yaml.Node, field string) (int64, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		return p.integer(n, field, math.MaxInt64)
	}
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	v, err := ParseSize(s)
	if err != nil {
		return 0, p.errorf(n, field, "%v", err)
	}
	return v, nil
}

// ParseSize parses a size as gadget.yaml writes it: a number of bytes with
// an optional K, M, G or T suffix (powers of 1024), like 64M.
func ParseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			num = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' {
		return 0, fmt.Errorf("invalid size %q (want a number of bytes with an optional K, M, G or T suffix, like 64M)", s)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

func (p *parser) name(n *yaml.Node, field, what string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > maxNameLen || !nameRe().MatchString(s) {
		return "", p.errorf(n, field, "invalid %s name %q (want lowercase letters, digits and dashes, starting with a letter, at most %d characters)", what, s, maxNameLen)
	}
	return s, nil
}

func (p *parser) top(root *yaml.Node, g *Gadget) error {
	known := []string{"volumes", "slots", "connections", "defaults"}
	var volumes *yaml.Node
	err := p.fields(root, "", known, func(key, field string, k, v *yaml.Node) error {
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
		return p.errorf(volumes, "volumes", "got %d volumes, want exactly one (the disk images are built from)", len(g.Volumes))
	}
	for i, c := range g.Connections {
		if g.Slots[c.Slot] == nil {
			return &Error{File: p.file, Line: p.connLines[i], Field: fmt.Sprintf("connections[%d].slot", i),
				Msg: fmt.Sprintf("no slot %q (declare it under slots)", c.Slot)}
		}
	}
	return nil
}
