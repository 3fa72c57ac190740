package gadget

import (
	"slices"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// FuzzParse checks that Parse never panics, and that what it accepts keeps
// the promises the image builder relies on: one volume with structures of
// valid sizes, unique names, and connections to declared slots.
func FuzzParse(f *testing.F) {
	testutil.AddSeeds(f, "testdata/*.yaml", "../examples/gadget-amd64/gadget.yaml", "../examples/gadget-arm64/gadget.yaml")
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data, "f")
		if err != nil {
			if g != nil {
				t.Fatalf("got a gadget and the error %v", err)
			}
			return
		}
		if len(g.Volumes) != 1 {
			t.Fatalf("accepted %d volumes", len(g.Volumes))
		}
		v := g.Volume()
		names := make(map[string]bool)
		for _, s := range v.Structures {
			if s.Size <= 0 || s.Size%512 != 0 || s.Name == "" || names[s.Name] || s.Filesystem == "" || s.Type == "" {
				t.Fatalf("accepted structure %+v", s)
			}
			names[s.Name] = true
		}
		for name, s := range g.Slots {
			if !slices.Contains(Interfaces(), s.Interface) || s.Path != "" && s.USBVendor != "" || s.USBProduct != "" && s.USBVendor == "" {
				t.Fatalf("accepted slot %s %+v", name, s)
			}
		}
		for _, c := range g.Connections {
			if g.Slots[c.Slot] == nil && !c.AppSlot() {
				t.Fatalf("accepted a connection to missing slot %s", c.Slot)
			}
		}
	})
}
