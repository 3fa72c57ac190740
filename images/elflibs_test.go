package images

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSharedLibs(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	libs, err := sharedLibs("/bin/sh", "/")
	if err != nil {
		t.Fatal(err)
	}
	hasLibc := slices.ContainsFunc(libs, func(l string) bool { return strings.HasSuffix(l, "/libc.so.6") })
	hasLoader := slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "/ld-linux") })
	if !hasLibc || !hasLoader {
		t.Errorf("got %v, want libc.so.6 and the dynamic loader", libs)
	}
	if static, err := sharedLibs("/bin/busybox", "/"); err == nil && len(static) != 0 {
		t.Errorf("a static busybox needs %v, want nothing", static)
	}
	if _, err := sharedLibs("/bin/sh", t.TempDir()); err == nil {
		t.Error("an empty sysroot gave the libraries of /bin/sh")
	}
}
