package assert

import (
	"fmt"
	"slices"
	"strings"
)

// field is one type-specific header of a known assertion type.
type field struct {
	name     string
	optional bool
}

// schema describes a known assertion type: its headers in canonical order,
// whether it has a body, and the check of its values.
type schema struct {
	fields []field
	body   bool
	// parse checks the values of a decoded assertion of the type.
	parse func(*Assertion) error
}

var schemas = map[string]*schema{
	AccountKeyType: {
		fields: []field{
			{name: "account"},
			{name: "public-key-fingerprint"},
			{name: "role"},
			{name: "names"},
			{name: "since"},
			{name: "until", optional: true},
			{name: "takeover", optional: true},
			{name: "grants", optional: true},
		},
		body:  true,
		parse: func(a *Assertion) error { _, err := ParseAccountKey(a); return err },
	},
	AppRevisionType: {
		fields: []field{
			{name: "name"},
			{name: "version"},
			{name: "revision"},
			{name: "arch"},
			{name: "size"},
			{name: "sha256"},
			{name: "package-type"},
			{name: "timestamp"},
		},
		parse: func(a *Assertion) error { _, err := ParseAppRevision(a); return err },
	},
	BaseRevisionType: {
		fields: []field{
			{name: "name"},
			{name: "version"},
			{name: "revision"},
			{name: "arch"},
			{name: "size"},
			{name: "sha256"},
			{name: "chunk-size"},
			{name: "verity-data-size"},
			{name: "verity-root-hash"},
			{name: "verity-salt"},
			{name: "timestamp"},
		},
		body:  true,
		parse: func(a *Assertion) error { _, err := ParseBaseRevision(a); return err },
	},
	CommandType: {
		fields: []field{
			{name: "id"},
			{name: "target"},
			{name: "action"},
			{name: "not-before"},
			{name: "expiry"},
		},
		body:  true,
		parse: func(a *Assertion) error { _, err := ParseCommand(a); return err },
	},
}

// checkHeaders checks that the type-specific headers (without type,
// authority-id, sign-key and body-length) are known and complete.
func (s *schema) checkHeaders(hs []Header) error {
	have := make(map[string]bool, len(hs))
	for _, h := range hs {
		if !s.known(h.Name) {
			return fmt.Errorf("unknown header %q", h.Name)
		}
		have[h.Name] = true
	}
	for _, f := range s.fields {
		if !f.optional && !have[f.name] {
			return fmt.Errorf("missing header %q", f.name)
		}
	}
	return nil
}

func (s *schema) known(name string) bool {
	return slices.ContainsFunc(s.fields, func(f field) bool { return f.name == name })
}

// check checks a decoded assertion of the type: its body and its values.
func (s *schema) check(a *Assertion) error {
	if s.body && len(a.body) == 0 {
		return fmt.Errorf("%s: missing body", a.Type())
	}
	if !s.body && len(a.body) > 0 {
		return fmt.Errorf("%s: unexpected body", a.Type())
	}
	return s.parse(a)
}

// sortHeaders returns the type-specific headers in canonical order: the
// schema's order for a known type, sorted by name otherwise.
func sortHeaders(typ string, hs []Header) []Header {
	sorted := slices.Clone(hs)
	s, ok := schemas[typ]
	if !ok {
		slices.SortStableFunc(sorted, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
		return sorted
	}
	index := func(name string) int {
		for i, f := range s.fields {
			if f.name == name {
				return i
			}
		}
		return len(s.fields) // unknown ones last; checkHeaders refuses them
	}
	slices.SortStableFunc(sorted, func(a, b Header) int { return index(a.Name) - index(b.Name) })
	return sorted
}
