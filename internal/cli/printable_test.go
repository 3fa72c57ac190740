package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile is text a forged device state could carry to drive the
// operator's terminal.
var hostile = []struct{ name, in, want string }{
	{"plain", "hello=3, ok (é, 日本)", "hello=3, ok (é, 日本)"},
	{"ESC colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
	{"OSC title", "\x1b]0;owned\x07", `\x1b]0;owned\x07`},
	{"BEL", "ding\a", `ding\x07`},
	{"CR overwrite", "failed\rdone  ", `failed\x0ddone  `},
	{"newline and tab", "a\nb\tc", `a\x0ab\x09c`},
	{"DEL", "x\x7f", `x\x7f`},
	{"C1 CSI", "\u009b31m", `\x9b31m`},
	{"C1 NEL", "a\u0085b", `a\x85b`},
	{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
	{"bidi override", "dev\u202e1ved", `dev\u202e1ved`},
	{"bidi isolate", "\u2066x\u2069", `\u2066x\u2069`},
	{"zero width", "de\u200bv1", `de\u200bv1`},
	{"line separator", "a\u2028b", `a\u2028b`},
	{"tag characters", "ok\U000E0041", `ok\U000e0041`},
}

func TestPrintable(t *testing.T) {
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			got := Printable(tt.in)
			if got != tt.want {
				t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !utf8.ValidString(got) || !isPrintable(got) {
				t.Errorf("Printable(%q) = %q, which still holds unsafe runes", tt.in, got)
			}
		})
	}
}

func TestPrintableLines(t *testing.T) {
	if got, want := PrintableLines("line 1\r\n\x1b[2Jline 2"), `line 1\x0d`+"\n"+`\x1b[2Jline 2`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// encoding/json leaves DEL, C1 and bidirectional overrides raw: WriteJSON
// escapes them, and the JSON still decodes to the same strings.
func TestWriteJSONEscapesTerminalControls(t *testing.T) {
	in := map[string]string{}
	for _, tt := range hostile {
		in[tt.name] = tt.in
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, in); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\x7f", "\u009b", "\u0085", "\u202e", "\u2066", "\u200b", "\U000E0041", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("got %q raw in the JSON output, want it escaped", bad)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, tt := range hostile {
		want := asJSONDecodes(tt.in)
		if back[tt.name] != want {
			t.Errorf("%s: got %q back, want %q", tt.name, back[tt.name], want)
		}
	}
	if !strings.HasSuffix(out, "}\n") || !strings.Contains(out, "\n  \"") {
		t.Errorf("got %q, want indented JSON ending in a newline", out)
	}
}

func FuzzPrintable(f *testing.F) {
	for _, tt := range hostile {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Printable(s)
		if !utf8.ValidString(got) || !isPrintable(got) {
			t.Errorf("Printable(%q) = %q, which still holds unsafe runes", s, got)
		}
		if isPrintable(s) && got != s {
			t.Errorf("Printable(%q) = %q, want safe text unchanged", s, got)
		}
		var buf bytes.Buffer
		WriteJSON(&buf, s)
		var back string
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back != asJSONDecodes(s) {
			t.Errorf("WriteJSON(%q) = %q, decoding to %q, %v", s, buf.Bytes(), back, err)
		}
	})
}

// asJSONDecodes is s as encoding/json gives it back: each byte that is not
// UTF-8 replaced by U+FFFD.
func asJSONDecodes(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
