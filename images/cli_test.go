package images

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/cli"
)

func TestCLIUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(args []string) error
		args []string
		want string
	}{
		{"base no arch", func(a []string) error { return Base(a, &bytes.Buffer{}, &bytes.Buffer{}) }, []string{"-o", "x"}, "give --arch and -o"},
		{"base extra", func(a []string) error { return Base(a, &bytes.Buffer{}, &bytes.Buffer{}) }, []string{"x"}, "unexpected argument"},
		{"build missing", func(a []string) error { return Build(a, &bytes.Buffer{}, &bytes.Buffer{}) }, []string{"--arch", "amd64"}, "missing --gadget, --base, --kernel, --initrd, -o"},
		{"build arch", func(a []string) error { return Build(a, &bytes.Buffer{}, &bytes.Buffer{}) },
			[]string{"--gadget", "g", "--base", "b", "--kernel", "k", "--initrd", "i", "--arch", "mips", "-o", "x"}, "unknown architecture \"mips\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(tc.args)
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

func TestCLIBaseAndBuild(t *testing.T) {
	o, key := testDiskOptions(t)
	bo, _ := testBaseOptions(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "root.asc")
	armored, _ := key.Public().Armored()
	os.WriteFile(keyFile, armored, 0o644)

	base := filepath.Join(dir, "base.pdk")
	args := []string{"--arch", bo.Arch, "--paddock", bo.Paddock, "--trust", keyFile, "-o", base, "--json"}
	if bo.NoApparmor {
		args = append(args, "--no-apparmor")
	}
	var stdout, stderr bytes.Buffer
	if err := Base(args, &stdout, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	var res struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Name != "paddock-base" || res.Size == 0 {
		t.Errorf("got %s (%v), want JSON with name and size", stdout.String(), err)
	}

	img := filepath.Join(dir, "disk.img")
	stdout.Reset()
	stderr.Reset()
	args = []string{"--gadget", o.Gadget, "--base", base, "--kernel", o.Kernel, "--initrd", o.Initrd,
		"--arch", o.Arch, "--app", o.Apps[0], "-o", img}
	if err := Build(args, &stdout, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	for _, step := range []string{"verify 1 package(s)", "boot: FAT32", "base-a: base.pdk", "data: ext4"} {
		if !strings.Contains(stderr.String(), step) {
			t.Errorf("progress lacks %q:\n%s", step, stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "disk image") {
		t.Errorf("got stdout %q", stdout.String())
	}
}
