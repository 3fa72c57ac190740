package ifacemgr

import (
	"strings"
	"testing"
)

func TestParsePlug(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PlugRef
		wantErr bool
	}{
		{in: "hello:serial-port", want: PlugRef{"hello", "serial-port"}},
		{in: "my-app2:i2c", want: PlugRef{"my-app2", "i2c"}},
		{in: "hello", wantErr: true},
		{in: ":serial", wantErr: true},
		{in: "hello:", wantErr: true},
		{in: "Hello:serial", wantErr: true},
		{in: "hello:serial:x", wantErr: true},
		{in: "../x:serial", wantErr: true},
		{in: "hello:1serial", wantErr: true},
		{in: "hello:" + strings.Repeat("a", 65), wantErr: true},
	} {
		got, err := ParsePlug(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePlug(%q): got error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePlug(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseSlot(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"serial1", true}, {":network", true}, {"", false}, {":", false}, {"a/b", false}, {"::x", false},
	} {
		if _, err := ParseSlot(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseSlot(%q): got error %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

// FuzzParsePlug checks that any input gives a plug that prints back as
// the input, or an error that quotes a bounded part of it.
func FuzzParsePlug(f *testing.F) {
	for _, s := range []string{"hello:serial-port", "a:b", ":", "x:y:z", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlug(s)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePlug(%q) = %v, which prints as %q", s, p, p.String())
		}
		if _, err := ParseSlot(p.Plug); err != nil {
			t.Fatalf("plug name %q is not a valid slot name: %v", p.Plug, err)
		}
	})
}
