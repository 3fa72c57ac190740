package manifest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9])*$`) })
	plugRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*$`) })
)

const (
	maxNameLen    = 40
	maxVersionLen = 32
	maxSummaryLen = 128
	maxCPUPercent = 100 * 1024 // 1024 CPUs; beyond that it is a typo
)

// parser walks the YAML node tree by hand, so that it sees duplicate keys,
// unknown fields and line numbers, and never panics on odd input.
type parser struct {
	file  string
	lines map[string]int
}

// fieldErrorf is errorf at the line of the key of field, or of its nearest
// parent, for errors about a whole mapping, such as a missing field.
func (p *parser) fieldErrorf(field, format string, args ...any) error {
	return &Error{File: p.file, Line: lineOf(p.lines, field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) error {
	e := &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// Parse parses and checks the manifest data read from filename (used only
// in errors). It rejects unknown fields, duplicate keys and invalid values,
// and fills in defaults: type app, restart on-failure for daemons, hook
// commands hooks/NAME, health interval and timeout.
func Parse(data []byte, filename string) (*Manifest, error) {
	p := &parser{file: filename, lines: make(map[string]int)}
	if len(data) > MaxSize {
		return nil, p.errorf(nil, "", "manifest is %d bytes, more than the limit of %d", len(data), MaxSize)
	}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	m := &Manifest{filename: filename, lines: p.lines}
	if err := p.top(root, m); err != nil {
		return nil, err
	}
	return m, nil
}

// document decodes exactly one YAML document and returns its top mapping.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errorf(nil, "", "manifest is empty (it needs at least name and version)")
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, p.errorf(&extra, "", "manifest must hold a single YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errorf(&doc, "", "manifest must be a YAML mapping")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "", "manifest must be a mapping of fields, not a %s", kindName(root))
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
func (p *parser) fields(n *yaml.Node, prefix string, known []string, fn func(key, field string, v *yaml.Node) error) error {
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
		p.lines[field] = k.Line
		if err := fn(k.Value, field, v); err != nil {
			return err
		}
	}
	return nil
}

// str returns the text of a scalar; null is the empty string. Numbers such
// as "version: 1.0" keep their literal spelling.
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

// integer returns a non-negative integer scalar.
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
	v, err := parseSize(s)
	if err != nil {
		return 0, p.errorf(n, field, "%v", err)
	}
	return v, nil
}

func parseSize(s string) (int64, error) {
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
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' && v == 0 {
		return 0, fmt.Errorf("invalid size %q (want a number of bytes with an optional K, M, G or T suffix, like 64M)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("must not be negative, got %q", s)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

// duration parses a positive Go duration such as "10s" or "1m30s".
func (p *parser) duration(n *yaml.Node, field string) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.errorf(n, field, "invalid duration %q (want a number with a unit, like 10s or 1m)", s)
	}
	if d <= 0 {
		return 0, p.errorf(n, field, "must be positive, got %q", s)
	}
	return d, nil
}

// plugs parses a list of distinct plug names.
func (p *parser) plugs(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n, field, "must be a list of plug names, not a %s", kindName(n))
	}
	var out []string
	for _, item := range n.Content {
		if item.Kind == yaml.AliasNode || item.Anchor != "" {
			return nil, p.errorf(item, field, "YAML anchors and aliases are not supported")
		}
		s, err := p.str(item, field)
		if err != nil {
			return nil, err
		}
		if !plugRe().MatchString(s) {
			return nil, p.errorf(item, field, "invalid plug name %q (want lowercase letters, digits and dashes, starting with a letter)", s)
		}
		if slices.Contains(out, s) {
			return nil, p.errorf(item, field, "plug %q is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// command checks a command line: its first word is a path that stays
// inside the package.
func (p *parser) command(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if err := checkCommand(s); err != nil {
		return "", p.errorf(n, field, "%v", err)
	}
	return s, nil
}

// CommandPath returns the program path of a command line: its first word.
func CommandPath(command string) string {
	f := strings.Fields(command)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func checkCommand(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("command %q contains control characters", s)
	}
	prog := CommandPath(s)
	switch {
	case prog == "":
		return errors.New("command is empty (want a path inside the package, like bin/hello)")
	case path.IsAbs(prog):
		return fmt.Errorf("path %q is absolute (want a path inside the package, like bin/hello)", prog)
	}
	clean := path.Clean(prog)
	if clean == ".." || strings.HasPrefix(clean, "../") || slices.Contains(strings.Split(clean, "/"), "..") {
		return fmt.Errorf("path %q escapes the package", prog)
	}
	if clean == "." {
		return fmt.Errorf("path %q is not a file", prog)
	}
	return nil
}
