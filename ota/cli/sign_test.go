package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/arch"
	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/trust"
)

// signFakeManifest makes Sign read m as the manifest of any package.
func signFakeManifest(t *testing.T, m *manifest.Manifest) {
	t.Helper()
	testutil.Replace(t, &signReadManifest, func(string) (*manifest.Manifest, error) { return m, nil })
}

// signSetup makes keys root and pub, trusts root, delegates pub to publish
// hello*, and writes a fake package; it returns the package and delegation.
func signSetup(t *testing.T) (pkg, delegation string) {
	t.Helper()
	keySetup(t)
	signFakeManifest(t, &manifest.Manifest{Name: "hello", Version: "1.0", Type: "app"})
	keyRun(t, "create", "root")
	keyRun(t, "create", "pub")
	keyRun(t, "create", "stranger")
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.asc")
	if err := os.WriteFile(rootFile, []byte(keyRun(t, "export", "root")), 0o644); err != nil {
		t.Fatal(err)
	}
	keyRun(t, "trust", rootFile)
	delegation = filepath.Join(dir, "pub.assert")
	keyRun(t, "delegate", "--key", "root", "--to", "pub", "--names", "hello*", "--until", "2027-01-01", "-o", delegation)
	pkg = filepath.Join(dir, "hello_1.0.pdk")
	if err := os.WriteFile(pkg, []byte("not really squashfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pkg, delegation
}

func TestSign(t *testing.T) {
	pkg, delegation := signSetup(t)
	var stdout, stderr bytes.Buffer
	if err := Sign([]string{pkg, "--key", "pub", "--revision", "3", "--delegation", delegation, "--arch", "arm64", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var res SignResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("not really squashfs"))
	want := SignResult{
		Path: pkg + ".assert", Name: "hello", Version: "1.0", Revision: 3, Arch: "arm64", Type: "app",
		Size: int64(len("not really squashfs")), SHA256: hex.EncodeToString(sum[:]), SignKey: res.SignKey, Delegations: 1,
	}
	if res != want {
		t.Errorf("got %+v, want %+v", res, want)
	}
	bundle, err := os.ReadFile(pkg + ".assert")
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := keys.LoadTrusted()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := trust.CheckRevision(bundle, trusted, keyTestNow, "")
	if err != nil {
		t.Fatalf("got %v checking the signed package, want it accepted", err)
	}
	if rev.Name != "hello" || rev.Revision != 3 || rev.Publisher != "pub" || rev.SHA256 != want.SHA256 || rev.Size != want.Size {
		t.Errorf("got revision %+v, want hello revision 3 by pub matching the file", rev)
	}
}

func TestSignDefaults(t *testing.T) {
	pkg, _ := signSetup(t)
	var stdout, stderr bytes.Buffer
	if err := Sign([]string{pkg, "--key", "root", "--revision", "1"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "wrote "+pkg+".assert") {
		t.Errorf("got output %q, want it to name the .assert file", stdout.String())
	}
	if !strings.Contains(stderr.String(), "without --delegation") {
		t.Errorf("got stderr %q, want a note about the missing delegation", stderr.String())
	}
	bundle, err := os.ReadFile(pkg + ".assert")
	if err != nil {
		t.Fatal(err)
	}
	as, err := assert.DecodeBundle(bundle)
	if err != nil || len(as) != 1 {
		t.Fatalf("got %d assertions, %v, want one app-revision", len(as), err)
	}
	if got, want := as[0].Header("arch"), arch.Native(); got != want {
		t.Errorf("got arch %q, want %q", got, want)
	}
}

func TestSignErrors(t *testing.T) {
	pkg, delegation := signSetup(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	narrow := filepath.Join(dir, "narrow.assert")
	keyRun(t, "delegate", "--key", "root", "--to", "pub", "--names", "other", "-o", narrow)
	var out bytes.Buffer
	if err := Sign([]string{pkg, "--key", "root", "--revision", "1", "-o", filepath.Join(dir, "rev.assert")}, &out, &out); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no package", []string{"--key", "pub", "--revision", "1"}, true, "sign takes one package file"},
		{"no key", []string{pkg, "--revision", "1"}, true, "sign needs --key"},
		{"no revision", []string{pkg, "--key", "pub"}, true, "sign needs --revision"},
		{"revision zero", []string{pkg, "--key", "pub", "--revision", "0"}, true, `got "0"`},
		{"unknown key", []string{pkg, "--key", "ghost", "--revision", "1"}, false, "key ghost not found (create it with 'paddock key create ghost')"},
		{"missing package", []string{pkg + ".x", "--key", "pub", "--revision", "1"}, false, "cannot read"},
		{"bad arch", []string{pkg, "--key", "pub", "--revision", "1", "--arch", "ARM"}, false, `arch "ARM"`},
		{"missing delegation", []string{pkg, "--key", "pub", "--revision", "1", "--delegation", pkg + ".none"}, false, "cannot read"},
		{"delegation of another key", []string{pkg, "--key", "stranger", "--revision", "1", "--delegation", delegation}, false,
			"it does not delegate key stranger"},
		{"delegation of other names", []string{pkg, "--key", "pub", "--revision", "1", "--delegation", narrow}, false,
			`key pub is not delegated to publish "hello" (it may publish: other)`},
		{"delegation holds a revision", []string{pkg, "--key", "pub", "--revision", "1", "--delegation", filepath.Join(dir, "rev.assert")}, false,
			"holds an assertion of type app-revision"},
		{"delegation is junk", []string{pkg, "--key", "pub", "--revision", "1", "--delegation", write("junk", []byte("junk"))}, false,
			"cannot read delegation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Sign(tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if got := errors.Is(err, pcli.ErrUsage); got != tt.usage {
				t.Errorf("got usage error %v, want %v", got, tt.usage)
			}
		})
	}
}

func TestSignHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := Sign([]string{"--help"}, &stdout, &stderr); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if !strings.HasPrefix(stdout.String(), "Usage: paddock sign") || !strings.Contains(stdout.String(), "-delegation") {
		t.Errorf("got help\n%s\nwant the usage and options", stdout.String())
	}
}

// TestSignRealPackage signs a real SquashFS package, read with the real
// manifest reader.
func TestSignRealPackage(t *testing.T) {
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		testutil.NeedCommand(t, tool, "squashfs-tools")
	}
	keySetup(t)
	keyRun(t, "create", "root")
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "name: hello\nversion: \"2.1\"\napps:\n  hello:\n    command: bin/hello\n"
	if err := os.WriteFile(filepath.Join(tree, "meta/app.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(t.TempDir(), "hello.pdk")
	if out, err := exec.Command("mksquashfs", tree, pkg, "-quiet", "-noappend").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	if err := Sign([]string{pkg, "--key", "root", "--revision", "5", "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var res SignResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Name != "hello" || res.Version != "2.1" || res.Type != "app" || res.Revision != 5 {
		t.Errorf("got %+v, want hello 2.1 app revision 5", res)
	}
}
