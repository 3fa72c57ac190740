package yamlstrict

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Msg: "m"}, "f: m"},
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Field: "a.b", Msg: "m"}, "f: a.b: m"},
		{Error{File: "f", Line: 3, Field: "a.b", Msg: "m"}, "f:3: a.b: m"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// walk parses data and visits every field and list item below the top
// mapping, reading scalars as strings.
func walk(data string) (*Parser, error) {
	p := New("f")
	root, err := p.Document([]byte(data), "doc", "a")
	if err != nil {
		return p, err
	}
	var visit func(n *yaml.Node, field string) error
	visit = func(n *yaml.Node, field string) error {
		switch n.Kind {
		case yaml.MappingNode:
			return p.Fields(n, field, nil, func(_, field string, _, v *yaml.Node) error { return visit(v, field) })
		case yaml.SequenceNode:
			return p.Seq(n, field, func(_ int, field string, v *yaml.Node) error { return visit(v, field) })
		}
		_, err := p.Str(n, field)
		return err
	}
	return p, visit(root, "")
}

func TestWalkRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "f: doc is empty (it needs at least a)"},
		{"two documents", "a: 1\n---\nb: 2\n", "f:2: doc must hold a single YAML document"},
		{"list", "- a\n", "f:1: doc must be a mapping of fields, not a list"},
		{"syntax", "a: 1\n b: 2\n", "f:2: invalid YAML: mapping values are not allowed in this context"},
		{"duplicate", "a: 1\na: 2\n", "f:2: a: duplicate key"},
		{"anchor", "a: &x {b: 1}\n", "f:1: a: YAML anchors and aliases are not supported"},
		{"merge key", "<<: {b: 1}\n", "f:1: YAML merge keys (<<) are not supported"},
		{"mapping key", "{a: 1}: 2\n", "f:1: keys must be plain strings"},
		{"alias in list", "a:\n  - &x b\n  - *x\n", "f:2: a[0]: YAML anchors and aliases are not supported"},
		{"binary", "a: !!binary aGk=\n", "f:1: a: must be a plain string, not tagged !!binary"},
		{"custom tag", "a: {b: !foo x}\n", "f:1: a.b: must be a plain string, not tagged !foo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := walk(tc.in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLines(t *testing.T) {
	p, err := walk("a:\n  b: 1\n  c:\n    - x\nd: ~\n")
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]int{"a": 1, "a.b": 2, "a.c": 3, "a.c.zz": 3, "a.zz": 1, "d": 5, "zz": 0, "": 0} {
		if got := p.Line(field); got != want {
			t.Errorf("Line(%q): got %d, want %d", field, got, want)
		}
	}
	if got, want := p.FieldErrorf("a.b.c", "missing").Error(), "f:2: a.b.c: missing"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFieldsUnknown(t *testing.T) {
	p := New("f")
	root, err := p.Document([]byte("a: 1\nb: 2\n"), "doc", "a")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Fields(root, "top", []string{"a"}, func(_, _ string, _, _ *yaml.Node) error { return nil })
	if got, want := err.Error(), "f:2: top.b: unknown field (known fields: a)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Line: 7}
}

func TestInt(t *testing.T) {
	tests := []struct {
		n    *yaml.Node
		want int64
		err  string
	}{
		{scalar("!!int", "42"), 42, ""},
		{scalar("!!int", "0x10"), 16, ""},
		{scalar("!!str", "42"), 0, `f:7: n: must be an integer, not "42"`},
		{scalar("!!int", "-1"), 0, "f:7: n: must not be negative, got -1"},
		{scalar("!!int", "101"), 0, "f:7: n: must be at most 100, got 101"},
		{scalar("!!int", "99999999999999999999"), 0, `f:7: n: invalid integer "99999999999999999999"`},
	}
	for _, tc := range tests {
		got, err := New("f").Int(tc.n, "n", 100)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Int(%s): got %d, %v; want error %q", tc.n.Value, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Int(%s): got %d, %v; want %d", tc.n.Value, got, err, tc.want)
		}
	}
}

func TestSize(t *testing.T) {
	const invalid = `invalid size %q (want a number of bytes with an optional K, M, G or T suffix, like 64M)`
	tests := []struct {
		in   string
		want int64
		// err and negErr are the messages without and with NegativeSizes;
		// negErr empty means the same as err.
		err, negErr string
	}{
		{"0", 0, "", ""},
		{"512K", 512 << 10, "", ""},
		{"8k", 8 << 10, "", ""},
		{"64M", 64 << 20, "", ""},
		{"1G", 1 << 30, "", ""},
		{"2T", 2 << 40, "", ""},
		{"", 0, invalid, ""},
		{"M", 0, invalid, ""},
		{"5X", 0, invalid, ""},
		{"1.5G", 0, invalid, ""},
		{"+5M", 0, invalid, ""},
		{"-0", 0, invalid, ""},
		{"-5M", 0, invalid, `must not be negative, got %q`},
		{"-9223372036854775808", 0, invalid, `must not be negative, got %q`},
		{"9000000000T", 0, `size %q is too large`, ""},
	}
	for _, tc := range tests {
		for _, neg := range []bool{false, true} {
			want := tc.err
			if neg && tc.negErr != "" {
				want = tc.negErr
			}
			if want != "" {
				want = "f:7: n: " + strings.ReplaceAll(want, "%q", `"`+tc.in+`"`)
			}
			p := New("f")
			p.NegativeSizes = neg
			got, err := p.Size(scalar("!!str", tc.in), "n")
			if want != "" {
				if err == nil || err.Error() != want {
					t.Errorf("Size(%q), NegativeSizes %v: got %d, %v; want error %q", tc.in, neg, got, err, want)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("Size(%q), NegativeSizes %v: got %d, %v; want %d", tc.in, neg, got, err, tc.want)
			}
		}
	}
	if got, err := New("f").Size(scalar("!!int", "1024"), "n"); got != 1024 || err != nil {
		t.Errorf("Size(1024): got %d, %v; want 1024", got, err)
	}
	if got, err := ParseSize("4K"); got != 4096 || err != nil {
		t.Errorf("ParseSize(4K): got %d, %v; want 4096", got, err)
	}
}

// FuzzParseSize checks that ParseSize never panics, and that what it
// accepts is a non-negative size.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64M", "-5M", "9000000000T", "8k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, v)
		}
	})
}
