package memrelease

import (
	"os"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

func TestDroppable(t *testing.T) {
	data, err := os.ReadFile("testdata/agent.smaps")
	if err != nil {
		t.Fatal(err)
	}
	ms := parseSmaps(data)
	if len(ms) != 9 {
		t.Fatalf("parseSmaps: got %d mappings, want 9", len(ms))
	}
	tests := []struct {
		name         string
		major, minor uint32
		inode        uint64
		want         []uint64 // the start addresses of the mappings to drop
	}{
		// The ELF header, the text and the rodata; not the relocated
		// read-only segment (it has pages of its own), the data, the
		// shared mapping or the other file.
		{"the binary", 0xfe, 0, 10307388, []uint64{0x400000, 0x401000, 0xced000}},
		{"another device", 0xfe, 1, 10307388, nil},
		{"another file", 0xfe, 0, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := droppable(ms, tt.major, tt.minor, tt.inode)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d mappings (%+v), want %d", len(got), got, len(tt.want))
			}
			for i, m := range got {
				if m.start != tt.want[i] {
					t.Errorf("mapping %d: got start %#x, want %#x", i, m.start, tt.want[i])
				}
			}
		})
	}
	text := droppable(ms, 0xfe, 0, 10307388)[1]
	if text.end != 0xced000 || text.rss != 9132 || text.perms != "r-xp" {
		t.Errorf("the text: got %+v, want 0x401000-0xced000 r-xp with 9132 kB resident", text)
	}
}

// FuzzParseSmaps checks that parseSmaps never panics and returns only
// mappings that end after they start, with permissions of 4 letters.
// Seeds are in testdata/.
func FuzzParseSmaps(f *testing.F) {
	testutil.AddSeeds(f, "testdata/*.smaps")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range parseSmaps(data) {
			if m.end <= m.start || len(m.perms) != 4 {
				t.Fatalf("got mapping %+v", m)
			}
		}
	})
}
