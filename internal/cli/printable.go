package cli

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Printable returns s fit for a terminal, on one line: control characters
// (C0 with tab and newline, DEL, C1), format characters (bidirectional
// overrides and isolates, zero-width and tag characters), line and
// paragraph separators, and bytes that are not UTF-8 are written as Go
// escapes (\x1b, \u202e, \xff). Text that a device, a broker or a package
// supplies goes through it before it is printed for people, so that it
// cannot move the cursor, recolour or retitle the terminal, ring the bell,
// overwrite a line with a carriage return, or reorder what is read.
func Printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r) && r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// PrintableLines is Printable for text of several lines: it keeps the
// newlines and escapes everything else Printable does, carriage returns
// included.
func PrintableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Printable(l)
	}
	return strings.Join(lines, "\n")
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune reports whether r can change how a terminal shows the text
// around it.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// escapeJSON writes the runes that encoding/json leaves raw but a terminal
// acts on (DEL, C1 controls, format characters) as \u escapes. JSON's own
// syntax is ASCII, so such a rune can only sit inside a string, where the
// escape means the same character.
func escapeJSON(b []byte) []byte {
	if isPrintable(string(b)) {
		return b
	}
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == '\n' || (r == utf8.RuneError && size == 1) || !unsafeRune(r):
			// encoding/json already escaped the other controls and
			// replaced bytes that are not UTF-8.
			out.Write(b[i : i+size])
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		i += size
	}
	return out.Bytes()
}
