package images

import (
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pack"
)

// TestCheckGadgetPackage: the gadget package seeded by --gadget-package
// must be a gadget packed from the directory the image is laid out from,
// and no --app may be a gadget.
func TestCheckGadgetPackage(t *testing.T) {
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	testutil.NeedCommand(t, "unsquashfs", "squashfs-tools")
	amd64, arm64 := filepath.Join("..", "examples", "gadget-amd64"), filepath.Join("..", "examples", "gadget-arm64")
	pdk := filepath.Join(t.TempDir(), "pc.pdk")
	if _, err := pack.Pack(amd64, pdk); err != nil {
		t.Fatal(err)
	}
	gadgetApp := &seedApp{SeedApp: SeedApp{Name: "pc", Type: manifest.TypeGadget}}
	app := &seedApp{SeedApp: SeedApp{Name: "hello", Type: manifest.TypeApp}}
	for _, tc := range []struct {
		name     string
		a        *seedApp
		isGadget bool
		dir      string
		want     string // "" for no error
	}{
		{"the gadget", gadgetApp, true, amd64, ""},
		{"an app as --app", app, false, amd64, ""},
		{"from another gadget directory", gadgetApp, true, arm64, "differs from"},
		{"an app as the gadget", app, true, amd64, "of type app"},
		{"a gadget as --app", gadgetApp, false, amd64, "--gadget-package"},
	} {
		err := checkGadgetPackage(pdk, tc.a, tc.isGadget, tc.dir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
