package boot

import (
	"runtime"
	"strings"
	"testing"
)

func TestVerityTable(t *testing.T) {
	root := strings.Repeat("0f", 32)
	b := &BaseInfo{RootHash: root, Salt: "a1b2", DataSize: 3 * 4096}
	sectors, params := verityTable("/dev/vda3", b, false)
	if want := "1 /dev/vda3 /dev/vda3 4096 4096 3 3 sha256 " + root + " a1b2"; params != want || sectors != 24 {
		t.Errorf("got %d sectors %q, want 24 %q", sectors, params, want)
	}
	if _, params := verityTable("/dev/vda3", b, true); !strings.HasSuffix(params, " 1 restart_on_corruption") {
		t.Errorf("got %q, want restart_on_corruption", params)
	}
}

// TestBaseInfoCheck: what goes into the kernel's table is checked to be
// what it says (a signed assertion is trusted, but a value with a space
// would add words to the table).
func TestBaseInfoCheck(t *testing.T) {
	good := BaseInfo{RootHash: strings.Repeat("ab", 32), Salt: "00ff", DataSize: 8192, Arch: runtime.GOARCH}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(b *BaseInfo){
		"short hash":     func(b *BaseInfo) { b.RootHash = "abcd" },
		"hash with args": func(b *BaseInfo) { b.RootHash = strings.Repeat("ab", 31) + " 1" },
		"salt not hex":   func(b *BaseInfo) { b.Salt = "zz" },
		"salt with args": func(b *BaseInfo) { b.Salt = "00 1 restart_on_corruption" },
		"empty salt":     func(b *BaseInfo) { b.Salt = "" },
		"size unaligned": func(b *BaseInfo) { b.DataSize = 4097 },
		"size zero":      func(b *BaseInfo) { b.DataSize = 0 },
		"other arch":     func(b *BaseInfo) { b.Arch = "riscv64" },
	}
	for name, f := range bad {
		b := good
		f(&b)
		if err := b.check(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestHashTreeSize(t *testing.T) {
	for _, tt := range []struct{ data, want int64 }{
		{4096, 4096},                         // one data block: one hash block
		{128 * 4096, 4096},                   // 128 hashes fill one block
		{129 * 4096, 3 * 4096},               // two blocks, then the root level
		{128 * 128 * 4096, (128 + 1) * 4096}, // two full levels
	} {
		if got := hashTreeSize(tt.data); got != tt.want {
			t.Errorf("hashTreeSize(%d) = %d, want %d", tt.data, got, tt.want)
		}
	}
}
