package arch

import "testing"

func TestDebian(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386", "ppc64le": "ppc64el", "riscv64": "riscv64"} {
		if got := Debian(goarch); got != want {
			t.Errorf("Debian(%q): got %q, want %q", goarch, got, want)
		}
	}
}
