// Package yamlstrict walks a YAML node tree by hand for strict parsers of
// small configuration files, such as package manifests and gadget.yaml.
//
// Walking the nodes rather than decoding into structs lets a parser see
// duplicate keys, unknown fields and line numbers, and never panic on odd
// input. Every problem is an *Error located by file, line and dotted field
// path, such as apps.hello.command or volumes.pc.structures[1].size.
package yamlstrict

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem in a YAML file, located by file, line and field.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path such as apps.hello.command; empty for the whole file
	Msg   string

	// format is Msg before its values were filled in, for Redacted.
	format string
}

// NewError returns an *Error whose Msg is format filled in with args, and
// which Redacted can strip of those values.
func NewError(file string, line int, field, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...), format: format}
}

// Redacted returns the error without anything taken from the file's
// content: the file, the line and the kind of problem, with the field path
// left out and every value the message quoted shown as "…". It is for
// errors about files whose content must not be shown to whoever reads the
// error, such as a package's manifest read by the agent, whose errors every
// local user can read.
func (e *Error) Redacted() *Error {
	msg := redactFormat(e.format)
	if !strings.ContainsFunc(msg, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
		msg = "invalid value"
	}
	return &Error{File: e.File, Line: e.Line, Msg: msg, format: msg}
}

// redactFormat replaces every verb of a fmt format by "…".
func redactFormat(format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		// Skip flags, width, precision and argument indexes up to the verb letter.
		for i+1 < len(format) && strings.IndexByte("+-# 0123456789.*[]", format[i+1]) >= 0 {
			i++
		}
		i++ // the verb
		b.WriteString("…")
	}
	return b.String()
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// Lines maps the dotted path of each field seen to the line of its key.
type Lines map[string]int

// Line returns the line of field, or of its nearest parent field known
// (parents are found by cutting at dots), or 0.
func (l Lines) Line(field string) int {
	for field != "" {
		if n, ok := l[field]; ok {
			return n
		}
		i := strings.LastIndexByte(field, '.')
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// Parser walks the nodes of one file, and remembers the line of each field
// that Fields visits, for errors found after the walk.
type Parser struct {
	File  string // the file name, used only in errors
	Lines Lines

	// NegativeSizes makes Size read a leading minus sign and refuse the
	// value as negative ("must not be negative, got "-5M""), rather than as
	// an invalid size.
	NegativeSizes bool
}

// New returns a Parser for the named file.
func New(file string) *Parser {
	return &Parser{File: file, Lines: make(Lines)}
}

// Errorf returns an *Error about field at the line of n; n may be nil when
// the error is about the whole file.
func (p *Parser) Errorf(n *yaml.Node, field, format string, args ...any) error {
	e := NewError(p.File, 0, field, format, args...)
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// FieldErrorf is Errorf at the line of the key of field, or of its nearest
// parent, for errors about a whole mapping, such as a missing field.
func (p *Parser) FieldErrorf(field, format string, args ...any) error {
	return NewError(p.File, p.Line(field), field, format, args...)
}

// Line returns the line of the key of field, or of its nearest parent
// field, or 0.
func (p *Parser) Line(field string) int { return p.Lines.Line(field) }

// Document decodes exactly one YAML document and returns its top mapping.
// Errors call the document what, and an empty one says that it needs at
// least needs: "manifest is empty (it needs at least name and version)".
func (p *Parser) Document(data []byte, what, needs string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.Errorf(nil, "", "%s is empty (it needs at least %s)", what, needs)
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, p.Errorf(&extra, "", "%s must hold a single YAML document", what)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.Errorf(&doc, "", "%s must be a YAML mapping", what)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.Errorf(root, "", "%s must be a mapping of fields, not a %s", what, KindName(root))
	}
	return root, nil
}

// yamlError turns a syntax error ("yaml: line 3: ...") into our format.
func (p *Parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	// The syntax error may quote the input (an anchor's name, say): it is
	// not a format, so Redacted keeps only "invalid YAML".
	return &Error{File: p.File, Line: line, Msg: "invalid YAML: " + msg, format: "invalid YAML"}
}

// KindName names the kind of n for errors: mapping, list, scalar, alias or
// document.
func KindName(n *yaml.Node) string {
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

// Fields iterates over a mapping, rejecting merge keys, non-string keys,
// duplicate keys, keys not in known (when known is non-nil), and anchors
// and aliases. It records the line of each key, and calls fn with the key,
// its dotted field path (prefix.key), the key node and the value node.
func (p *Parser) Fields(n *yaml.Node, prefix string, known []string, fn func(key, field string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.Errorf(n, prefix, "must be a mapping, not a %s", KindName(n))
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			return p.Errorf(k, prefix, "YAML merge keys (<<) are not supported")
		}
		if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool") {
			return p.Errorf(k, prefix, "keys must be plain strings")
		}
		field := k.Value
		if prefix != "" {
			field = prefix + "." + k.Value
		}
		if seen[k.Value] {
			return p.Errorf(k, field, "duplicate key")
		}
		seen[k.Value] = true
		if known != nil && !slices.Contains(known, k.Value) {
			return p.Errorf(k, field, "unknown field (known fields: %s)", strings.Join(known, ", "))
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return p.Errorf(v, field, "YAML anchors and aliases are not supported")
		}
		p.Lines[field] = k.Line
		if err := fn(k.Value, field, k, v); err != nil {
			return err
		}
	}
	return nil
}

// Seq iterates over a sequence, rejecting anchors and aliases; null is an
// empty list. It calls fn with each index, the field path field[i] and the
// item.
func (p *Parser) Seq(n *yaml.Node, field string, fn func(i int, field string, v *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return p.Errorf(n, field, "must be a list, not a %s", KindName(n))
	}
	for i, v := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return p.Errorf(v, f, "YAML anchors and aliases are not supported")
		}
		if err := fn(i, f, v); err != nil {
			return err
		}
	}
	return nil
}

// Str returns the text of a scalar; null is the empty string. Numbers such
// as "version: 1.0" keep their literal spelling. Binary and custom tags are
// refused.
func (p *Parser) Str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.Errorf(n, field, "must be a string, not a %s", KindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	if n.Tag == "!!binary" || strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return "", p.Errorf(n, field, "must be a plain string, not tagged %s", n.Tag)
	}
	return n.Value, nil
}

// Int returns a non-negative integer scalar of at most max.
func (p *Parser) Int(n *yaml.Node, field string, max int64) (int64, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.Errorf(n, field, "must be an integer, not %q", n.Value)
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, p.Errorf(n, field, "invalid integer %q", n.Value)
	}
	if v < 0 {
		return 0, p.Errorf(n, field, "must not be negative, got %d", v)
	}
	if v > max {
		return 0, p.Errorf(n, field, "must be at most %d, got %d", max, v)
	}
	return v, nil
}
