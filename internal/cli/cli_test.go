package cli

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantKey string
		wantRev int
		wantJ   bool
	}{
		{[]string{"hello.pdk", "--key", "pub", "--revision", "3"}, []string{"hello.pdk"}, "pub", 3, false},
		{[]string{"--json", "a", "b"}, []string{"a", "b"}, "", 0, true},
		{[]string{"a", "--", "--key", "x"}, []string{"a", "--key", "x"}, "", 0, false},
		{nil, nil, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := NewFlagSet("t", "usage", new(bytes.Buffer))
			key := fs.String("key", "", "")
			rev := fs.Int("revision", 0, "")
			j := fs.Bool("json", false, "")
			pos, err := Parse(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tt.wantPos) {
				t.Errorf("got positional %q, want %q", pos, tt.wantPos)
			}
			if *key != tt.wantKey || *rev != tt.wantRev || *j != tt.wantJ {
				t.Errorf("got key=%q revision=%d json=%v, want %q %d %v", *key, *rev, *j, tt.wantKey, tt.wantRev, tt.wantJ)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	var out bytes.Buffer
	fs := NewFlagSet("t", "paddock t FILE\n\nDoes t.", &out)
	fs.String("key", "", "the key")
	if _, err := Parse(fs, []string{"--nope"}); !errors.Is(err, ErrUsage) {
		t.Errorf("got %v, want a usage error", err)
	}
	out.Reset()
	if _, err := Parse(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("got %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "Does t.") || !strings.Contains(out.String(), "-key") {
		t.Errorf("help output %q lacks the usage text or the flags", out.String())
	}
}
