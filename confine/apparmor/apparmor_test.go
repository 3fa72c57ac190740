package apparmor

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func helloProfile() Profile {
	return Profile{
		Label:     "paddock.hello.hello",
		AppDir:    "/apps/hello/3",
		DataDir:   "/var/lib/paddock/data/hello/3",
		CommonDir: "/var/lib/paddock/data/hello/common",
	}
}

// serialSnippet is what a serial-port connection adds.
const serialSnippet = "/dev/ttyUSB0 rwk,\n/run/lock/ r,"

// gpioSnippet writes sysfs, so the blanket /sys deny must go.
const gpioSnippet = "/sys/class/gpio/export w,\n/sys/class/gpio/gpio17/{direction,value} rw,"

func requireParser(t *testing.T) {
	t.Helper()
	if _, err := findParser(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

func TestGenerateGolden(t *testing.T) {
	tests := []struct {
		golden string
		mod    func(*Profile)
	}{
		{"hello.profile", func(*Profile) {}},
		{"hello-devmode.profile", func(p *Profile) { p.Complain = true }},
		{"hello-plugs.profile", func(p *Profile) { p.Snippets = []string{serialSnippet, gpioSnippet} }},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			p := helloProfile()
			tt.mod(&p)
			got, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Generate output differs from %s (run go test -update and review the diff); got:\n%s", name, got)
			}
		})
	}
}

func TestGenerateFlagsAndDenies(t *testing.T) {
	p := helloProfile()
	strict, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	p.Complain = true
	devmode, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	p.Complain = false
	p.Snippets = []string{gpioSnippet}
	gpio, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text, sub string
		want            bool
	}{
		{"strict flags", strict, "flags=(attach_disconnected,mediate_deleted) {", true},
		{"strict not complain", strict, "complain", false},
		{"devmode flags", devmode, "flags=(attach_disconnected,mediate_deleted,complain) {", true},
		{"current alias", strict, "@{APP_CURRENT}=/apps/hello/current\n", true},
		{"other data denied", strict, "deny /var/lib/paddock/data/{[^h],h[^e],he[^l],hel[^l],hell[^o],hello[^/]}** rwlkmx,", true},
		{"sys writes denied", strict, "deny /sys/** w,", true},
		{"proc sys writes denied", strict, "deny @{PROC}/sys/** w,", true},
		{"gpio lifts sys deny", gpio, "deny /sys/** w,", false},
		{"gpio keeps proc sys deny", gpio, "deny @{PROC}/sys/** w,", true},
		{"gpio snippet indented", gpio, "\n  /sys/class/gpio/export w,\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Contains(tt.text, tt.sub); got != tt.want {
				t.Errorf("contains %q: got %v, want %v", tt.sub, got, tt.want)
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Profile)
	}{
		{"empty label", func(p *Profile) { p.Label = "" }},
		{"no prefix", func(p *Profile) { p.Label = "hello.hello" }},
		{"no command", func(p *Profile) { p.Label = "paddock.hello" }},
		{"brace in label", func(p *Profile) { p.Label = "paddock.hello.x{" }},
		{"newline in label", func(p *Profile) { p.Label = "paddock.hello.x\n/** rwx" }},
		{"space in label", func(p *Profile) { p.Label = "paddock.hello.x y" }},
		{"comma in label", func(p *Profile) { p.Label = "paddock.hello.x,y" }},
		{"uppercase app", func(p *Profile) { p.Label = "paddock.Hello.x" }},
		{"relative app dir", func(p *Profile) { p.AppDir = "apps/hello/3" }},
		{"root app dir", func(p *Profile) { p.AppDir = "/" }},
		{"top-level app dir", func(p *Profile) { p.AppDir = "/apps" }},
		{"unclean app dir", func(p *Profile) { p.AppDir = "/apps/hello/../x/3" }},
		{"trailing slash", func(p *Profile) { p.AppDir = "/apps/hello/3/" }},
		{"quote in path", func(p *Profile) { p.DataDir = `/var/lib/paddock/data/hello/3"` }},
		{"newline in path", func(p *Profile) { p.DataDir = "/var/lib/paddock/data/hello/3\n/** rwx," }},
		{"comma in path", func(p *Profile) { p.CommonDir = "/a,b" }},
		{"brace in path", func(p *Profile) { p.CommonDir = "/a/{b}" }},
		{"glob in path", func(p *Profile) { p.CommonDir = "/a/**" }},
		{"variable in path", func(p *Profile) { p.CommonDir = "/a/@x" }},
		{"space in path", func(p *Profile) { p.CommonDir = "/a b" }},
		{"empty data dir", func(p *Profile) { p.DataDir = "" }},
		{"other app's data", func(p *Profile) { p.DataDir = "/var/lib/paddock/data/other/3" }},
		{"data root itself", func(p *Profile) { p.CommonDir = "/var/lib/paddock/data" }},
		{"snippet closes profile", func(p *Profile) { p.Snippets = []string{"} profile evil {"} }},
		{"snippet opens block", func(p *Profile) { p.Snippets = []string{"/a r,\n^hat {"} }},
		{"snippet NUL", func(p *Profile) { p.Snippets = []string{"/a r,\x00"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := helloProfile()
			tt.mod(&p)
			if text, err := Generate(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("got error %v, want ErrInvalid; text:\n%s", err, text)
			}
		})
	}
}

func TestGenerateAccepts(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Profile)
	}{
		{"hook label", func(p *Profile) { p.Label = "paddock.hello.hook.configure" }},
		{"dashed app", func(p *Profile) {
			p.Label, p.AppDir = "paddock.my-app.serve_2", "/apps/my-app/12"
			p.DataDir, p.CommonDir = "/var/lib/paddock/data/my-app/12", "/var/lib/paddock/data/my-app/common"
		}},
		{"test root", func(p *Profile) { p.DataDir = "/tmp/TestX/001/var/lib/paddock/data/hello/3" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := helloProfile()
			tt.mod(&p)
			if _, err := Generate(p); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

func TestCheckAndCompile(t *testing.T) {
	requireParser(t)
	dashed := helloProfile()
	dashed.Label, dashed.AppDir = "paddock.my-app.serve", "/apps/my-app/12"
	dashed.DataDir, dashed.CommonDir = "/var/lib/paddock/data/my-app/12", "/var/lib/paddock/data/my-app/common"
	devmode := helloProfile()
	devmode.Complain = true
	plugs := helloProfile()
	plugs.Snippets = []string{serialSnippet, gpioSnippet}
	for name, p := range map[string]Profile{"hello": helloProfile(), "my-app": dashed, "devmode": devmode, "plugs": plugs} {
		t.Run(name, func(t *testing.T) {
			text, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := Check(text); err != nil {
				t.Fatalf("Check: %v", err)
			}
			bin, err := Compile(text, "")
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if len(bin) == 0 {
				t.Fatal("Compile returned no policy")
			}
			if !bytes.Contains(bin, []byte(p.Label)) {
				t.Errorf("compiled policy does not name profile %s", p.Label)
			}
		})
	}
}

func TestCompileWithFeatures(t *testing.T) {
	requireParser(t)
	text, err := Generate(helloProfile())
	if err != nil {
		t.Fatal(err)
	}
	features := filepath.Join(t.TempDir(), "features")
	if err := os.WriteFile(features, abi30, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := Compile(text, features)
	if err != nil {
		t.Fatal(err)
	}
	if len(bin) == 0 {
		t.Fatal("Compile returned no policy")
	}
	if _, err := Compile(text, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Compile with a missing features dir: got no error")
	}
}

func TestCheckReportsParserMessage(t *testing.T) {
	requireParser(t)
	err := Check("profile broken {\n  /a r\n}\n")
	if err == nil {
		t.Fatal("got no error for a rule without a comma")
	}
	if msg := err.Error(); !strings.Contains(msg, "syntax error") || strings.Contains(msg, "Cache read/write") {
		t.Errorf("got %q, want the parser's syntax error alone", msg)
	}
}

func TestEnabledMatchesKernel(t *testing.T) {
	_, err := os.Stat("/sys/kernel/security/apparmor")
	if got, want := Enabled(), err == nil; got != want {
		t.Errorf("Enabled() = %v, want %v (presence of /sys/kernel/security/apparmor)", got, want)
	}
}

// FuzzGenerate checks that whatever Generate accepts stays one profile:
// balanced braces and a single profile line naming the label.
func FuzzGenerate(f *testing.F) {
	f.Add("paddock.hello.hello", "/apps/hello/3", "/var/lib/paddock/data/hello/3", "/x,y")
	f.Fuzz(func(t *testing.T, label, appDir, dataDir, commonDir string) {
		text, err := Generate(Profile{Label: label, AppDir: appDir, DataDir: dataDir, CommonDir: commonDir})
		if err != nil {
			return
		}
		if strings.Count(text, "{") != strings.Count(text, "}") {
			t.Fatalf("unbalanced braces for %q %q %q %q", label, appDir, dataDir, commonDir)
		}
		if n := strings.Count(text, "\nprofile "); n != 1 || !strings.Contains(text, "\nprofile "+label+" flags=") {
			t.Fatalf("got %d profile lines for label %q", n, label)
		}
	})
}
