// Package apparmor generates, compiles and loads the AppArmor profile that
// confines each app command, and asks the kernel to switch to it on exec.
//
// A profile is generated from a template in the spirit of snapd's default
// template, compiled with apparmor_parser (on the device, or on a build host
// against the device kernel's feature set), loaded through securityfs, and
// entered by writing "exec LABEL" to the thread's attr file just before exec.
package apparmor

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
)

// DataRoot is where every app's writable data lives on a device; a profile
// denies the parts of it that belong to other apps.
const DataRoot = "/var/lib/paddock/data"

// Profile describes the confinement of one app command.
type Profile struct {
	// Label is the profile name, "paddock.APP.CMD".
	Label string
	// AppDir is where the revision is mounted, e.g. /apps/hello/3.
	AppDir string
	// DataDir and CommonDir are the writable per-revision and shared data.
	DataDir, CommonDir string
	// Snippets are rules added by connected interfaces, one or more rules each.
	Snippets []string
	// Complain logs instead of denying (devmode).
	Complain bool
}

// ErrInvalid marks a profile whose label, paths or snippets were refused.
var ErrInvalid = errors.New("invalid profile")

//go:embed profile.tmpl
var profileTemplate string

var tmpl = sync.OnceValue(func() *template.Template { return template.Must(template.New("profile").Parse(profileTemplate)) })

// labelRE allows "paddock.APP.CMD" and "paddock.APP.hook.HOOK"; nothing in it
// can end a rule or a name in the policy language.
var labelRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^paddock\.([a-z0-9][a-z0-9-]*)(\.[A-Za-z0-9][A-Za-z0-9_-]*){1,2}$`)
})

// pathRE allows absolute paths of plain characters: no quotes, spaces,
// newlines, braces, commas, globs, variables or comment signs.
var pathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/+-]*$`) })

// sysfsRE finds a snippet rule that writes a /sys path (but not /proc/sys):
// a rule that only reads /sys (hardware-observe) keeps the deny.
var sysfsRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s*(?:(?:owner|audit|allow)\s+)*/sys/\S*\s+[rwklmix]*w`)
})

// templateData is what profile.tmpl sees; every field is validated.
type templateData struct {
	Label, App         string
	AppDir, CurrentDir string
	DataDir, CommonDir string
	OtherData          string
	Snippets           []string
	Flags              string
	DenySysWrites      bool
}

// Generate returns the profile text for p, or an error wrapping ErrInvalid
// if a label, path or snippet could inject rules.
func Generate(p Profile) (string, error) {
	d, err := newTemplateData(p)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl().Execute(&b, d); err != nil {
		return "", fmt.Errorf("internal error: profile template: %w", err)
	}
	return b.String(), nil
}

func newTemplateData(p Profile) (*templateData, error) {
	m := labelRE().FindStringSubmatch(p.Label)
	if m == nil {
		return nil, fmt.Errorf("%w: label %q is not of the form paddock.APP.CMD (lowercase app name; letters, digits, '-' and '_')", ErrInvalid, p.Label)
	}
	app := m[1]
	for _, f := range []struct{ name, val string }{{"app dir", p.AppDir}, {"data dir", p.DataDir}, {"common dir", p.CommonDir}} {
		if err := checkPath(f.name, f.val); err != nil {
			return nil, err
		}
	}
	for _, dir := range []string{p.DataDir, p.CommonDir} {
		// The profile denies other apps' data; a dir there would be denied too.
		if inside(dir, DataRoot) && !inside(dir, path.Join(DataRoot, app)) {
			return nil, fmt.Errorf("%w: data dir %s of app %s is not under %s/%s", ErrInvalid, dir, app, DataRoot, app)
		}
	}
	if path.Dir(p.AppDir) == "/" {
		return nil, fmt.Errorf("%w: app dir %s is not a revision dir like /apps/%s/REV", ErrInvalid, p.AppDir, app)
	}
	for i, s := range p.Snippets {
		if err := checkSnippet(s); err != nil {
			return nil, fmt.Errorf("%w: snippet %d: %v", ErrInvalid, i, err)
		}
	}
	flags := "attach_disconnected,mediate_deleted"
	if p.Complain {
		flags += ",complain"
	}
	return &templateData{
		Label:      p.Label,
		App:        app,
		AppDir:     p.AppDir,
		CurrentDir: path.Join(path.Dir(p.AppDir), "current"),
		DataDir:    p.DataDir,
		CommonDir:  p.CommonDir,
		OtherData:  otherDataGlob(app),
		Snippets:   indent(p.Snippets),
		Flags:      flags,
		// Deny beats allow: a blanket deny would void a gpio or pwm plug.
		DenySysWrites: !slices.ContainsFunc(p.Snippets, sysfsRE().MatchString),
	}, nil
}

func checkPath(name, p string) error {
	if !pathRE().MatchString(p) {
		return fmt.Errorf("%w: %s %q must be an absolute path of letters, digits and ._+-/ only", ErrInvalid, name, p)
	}
	if path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%w: %s %q is not a clean path below /", ErrInvalid, name, p)
	}
	return nil
}

// inside reports whether p is dir or below it.
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// checkSnippet refuses text that could end the profile early or smuggle in
// a second one: unbalanced braces or parentheses, NUL bytes. Snippets come
// from paddock's own interface catalog; this catches mistakes, not attacks.
func checkSnippet(s string) error {
	if strings.ContainsRune(s, 0) {
		return errors.New("contains a NUL byte")
	}
	depth := 0
	for _, r := range s {
		switch r {
		case '{', '(':
			depth++
		case '}', ')':
			depth--
			if depth < 0 {
				return errors.New("unbalanced braces or parentheses")
			}
		}
	}
	if depth != 0 {
		return errors.New("unbalanced braces or parentheses")
	}
	return nil
}

// indent puts each snippet line two spaces in, to sit inside the profile.
func indent(snippets []string) []string {
	out := make([]string, len(snippets))
	for i, s := range snippets {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for j, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				lines[j] = "  " + l
			} else {
				lines[j] = ""
			}
		}
		out[i] = strings.Join(lines, "\n")
	}
	return out
}

// otherDataGlob returns a glob for DataRoot/X/** for every X other than app.
// AppArmor has no "except", and deny rules beat allow rules, so the glob
// spells out "differs from app at character i" for each i, plus "extends
// app" (hello2 for hello): for "ab" it is {[^a],a[^b],ab[^/]}**.
func otherDataGlob(app string) string {
	alts := make([]string, 0, len(app)+1)
	for i := 0; i < len(app); i++ {
		alts = append(alts, app[:i]+"[^"+app[i:i+1]+"]")
	}
	alts = append(alts, app+"[^/]")
	return DataRoot + "/{" + strings.Join(alts, ",") + "}**"
}
