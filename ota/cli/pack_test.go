package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
)

// packExample returns the path of examples/hello in the source tree.
func packExample(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "meta/app.yaml")); err != nil {
		t.Skipf("examples/hello is missing: %v", err)
	}
	return dir
}

func TestPackCommand(t *testing.T) {
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	out := filepath.Join(t.TempDir(), "h.pdk")
	var stdout, stderr bytes.Buffer
	if err := Pack([]string{packExample(t), "-o", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wrote " + out, "name:    hello", "version: 1.0", "sha256:  "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("got output %q, want it to contain %q", stdout.String(), want)
		}
	}
}

func TestPackCommandJSON(t *testing.T) {
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	example := packExample(t)
	t.Chdir(t.TempDir())
	var stdout bytes.Buffer
	if err := Pack([]string{"--json", example}, &stdout, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	var res PackResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("got %q, want JSON: %v", stdout.String(), err)
	}
	fi, err := os.Stat("hello_1.0.pdk")
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != "hello_1.0.pdk" || res.Name != "hello" || res.Version != "1.0" || res.Type != "app" || res.Size != fi.Size() || len(res.SHA256) != 64 {
		t.Errorf("got %+v, want hello_1.0.pdk, hello 1.0 app of %d bytes with a sha256", res, fi.Size())
	}
}

func TestPackCommandUsage(t *testing.T) {
	tests := [][]string{nil, {"a", "b"}, {"--nope", "a"}}
	for _, args := range tests {
		err := Pack(args, new(bytes.Buffer), new(bytes.Buffer))
		if !errors.Is(err, pcli.ErrUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

func TestPackCommandHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := Pack([]string{"--help"}, &stdout, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"paddock pack DIR", "meta/app.yaml", "-o FILE", "-json"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("got help %q, want it to contain %q", stdout.String(), want)
		}
	}
}

func TestPackCommandError(t *testing.T) {
	testutil.NeedCommand(t, "mksquashfs", "squashfs-tools")
	dir := t.TempDir()
	err := Pack([]string{dir, "-o", filepath.Join(dir, "x.pdk")}, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "meta/app.yaml is missing") {
		t.Errorf("got %v, want an error about the missing manifest", err)
	}
}
