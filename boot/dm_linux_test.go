package boot

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestDMRequest checks the bytes of a table load against the layout of
// <linux/dm-ioctl.h> (amd64 and arm64 alike): struct dm_ioctl is 312
// bytes, the target spec 40, its parameters NUL-terminated after it. The
// host has no device-mapper: the real check is the QEMU boot.
func TestDMRequest(t *testing.T) {
	params := "1 /dev/vda3 /dev/vda3 4096 4096 10 10 sha256 " + strings.Repeat("ab", 32) + " 00ff"
	b, err := dmRequest("paddock-base-a", 1, []dmTarget{{start: 0, length: 80, kind: "verity", params: params}})
	if err != nil {
		t.Fatal(err)
	}
	u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(b[off:]) }
	u64 := func(off int) uint64 { return binary.NativeEndian.Uint64(b[off:]) }
	cstr := func(off, n int) string { s, _, _ := strings.Cut(string(b[off:off+n]), "\x00"); return s }
	checks := []struct {
		what      string
		got, want any
	}{
		{"version", [3]uint32{u32(0), u32(4), u32(8)}, [3]uint32{4, 0, 0}},
		{"data_size", int(u32(12)), len(b)},
		{"data_start", u32(16), uint32(312)},
		{"target_count", u32(20), uint32(1)},
		{"flags (DM_READONLY_FLAG)", u32(28), uint32(1)},
		{"name", cstr(48, 128), "paddock-base-a"},
		{"sector_start", u64(312), uint64(0)},
		{"length", u64(320), uint64(80)},
		{"next", int(u32(332)), (40 + len(params) + 1 + 7) &^ 7},
		{"target_type", cstr(336, 16), "verity"},
		{"params", cstr(352, len(params)+1), params},
		{"params end", b[352+len(params)], byte(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(b) < 16<<10 {
		t.Errorf("buffer of %d bytes, want room for the kernel's answer (16 KiB)", len(b))
	}
	for _, name := range []string{"", strings.Repeat("x", 128)} {
		if _, err := dmRequest(name, 0, nil); err == nil {
			t.Errorf("name of %d bytes: no error", len(name))
		}
	}
}
