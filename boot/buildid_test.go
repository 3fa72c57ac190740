package boot

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// elfBuildID reads the Go build ID the long way, through the section
// headers, as the reference for goBuildID.
func elfBuildID(t *testing.T, path string) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		t.Fatalf("%s has no .note.go.buildid", path)
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The section is the whole note: namesz, descsz and type, "Go\0\0",
	// then the ID, padded.
	return data[16 : 16+f.ByteOrder.Uint32(data[4:])]
}

func TestGoBuildIDMatchesSections(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bins := []string{self}
	// A 32-bit binary too (armv7 devices run one).
	if testing.Short() {
		t.Log("-short: the 32-bit binary is not built")
	} else {
		bin := filepath.Join(t.TempDir(), "hello386")
		src := filepath.Join(t.TempDir(), "main.go")
		if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		build := exec.Command("go", "build", "-o", bin, src)
		build.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build for 386: %v\n%s", err, out)
		}
		bins = append(bins, bin)
	}
	for _, bin := range bins {
		got, err := goBuildID(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		if want := elfBuildID(t, bin); !bytes.Equal(got, want) {
			t.Errorf("%s: got build ID %q, want %q", bin, got, want)
		}
	}
}

func TestGoBuildIDRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		head []byte
	}{
		{"empty", nil},
		{"not ELF", []byte("#!/bin/sh\necho hello, this is not an ELF file at all, no\n")},
		{"ELF header only", append([]byte(elf.ELFMAG+"\x02\x01\x01"), make([]byte, 64)...)},
		{"bad class", append([]byte(elf.ELFMAG+"\x07\x01\x01"), make([]byte, 64)...)},
	} {
		if id, err := buildIDFromHead(tc.head); err == nil {
			t.Errorf("%s: got build ID %q, want an error", tc.name, id)
		}
	}
	if sameBuild("/bin/sh", "/bin/sh") {
		t.Error("/bin/sh, not a Go binary, is the same build as itself")
	}
}

func FuzzBuildIDFromHead(f *testing.F) {
	if self, err := os.Executable(); err == nil {
		if data, err := os.ReadFile(self); err == nil && len(data) > 4096 {
			f.Add(data[:4096])
		}
	}
	f.Add([]byte(elf.ELFMAG + "\x01\x01\x01"))
	f.Fuzz(func(t *testing.T, head []byte) {
		id, err := buildIDFromHead(head)
		if err == nil && !bytes.Contains(head, id) {
			t.Fatalf("build ID %q is not from the input", id)
		}
	})
}
