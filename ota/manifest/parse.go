package manifest

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/names"
	"paddock.dev/paddock/internal/yamlstrict"
)

var (
	plugRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*$`) })
)

const (
	maxNameLen    = names.MaxLen
	maxVersionLen = 32
	maxSummaryLen = 128
	maxCPUPercent = 100 * 1024 // 1024 CPUs; beyond that it is a typo
)

// parser walks the YAML node tree by hand, so that it sees duplicate keys,
// unknown fields and line numbers, and never panics on odd input.
type parser struct {
	*yamlstrict.Parser
}

// Parse parses and checks the manifest data read from filename (used only
// in errors). It rejects unknown fields, duplicate keys and invalid values,
// and fills in defaults: type app, restart on-failure for daemons, hook
// commands hooks/NAME, health interval and timeout.
func Parse(data []byte, filename string) (*Manifest, error) {
	p := &parser{Parser: yamlstrict.New(filename)}
	p.NegativeSizes = true // manifests say "must not be negative" for -5M
	if len(data) > MaxSize {
		return nil, p.Errorf(nil, "", "manifest is %d bytes, more than the limit of %d", len(data), MaxSize)
	}
	root, err := p.Document(data, "manifest", "name and version")
	if err != nil {
		return nil, err
	}
	m := &Manifest{filename: filename, lines: p.Lines}
	if err := p.top(root, m); err != nil {
		return nil, err
	}
	return m, nil
}

// duration parses a positive Go duration such as "10s" or "1m30s".
func (p *parser) duration(n *yaml.Node, field string) (time.Duration, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.Errorf(n, field, "invalid duration %q (want a number with a unit, like 10s or 1m)", s)
	}
	if d <= 0 {
		return 0, p.Errorf(n, field, "must be positive, got %q", s)
	}
	return d, nil
}

// plugs parses a list of distinct plug names.
func (p *parser) plugs(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.Errorf(n, field, "must be a list of plug names, not a %s", yamlstrict.KindName(n))
	}
	var out []string
	for _, item := range n.Content {
		if item.Kind == yaml.AliasNode || item.Anchor != "" {
			return nil, p.Errorf(item, field, "YAML anchors and aliases are not supported")
		}
		s, err := p.Str(item, field)
		if err != nil {
			return nil, err
		}
		if !plugRe().MatchString(s) {
			return nil, p.Errorf(item, field, "invalid plug name %q (want lowercase letters, digits and dashes, starting with a letter)", s)
		}
		if slices.Contains(out, s) {
			return nil, p.Errorf(item, field, "plug %q is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// command checks a command line: its first word is a path that stays
// inside the package.
func (p *parser) command(n *yaml.Node, field string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if err := checkCommand(s); err != nil {
		return "", p.Errorf(n, field, "%v", err)
	}
	return s, nil
}

// CommandPath returns the program path of a command line: its first word.
func CommandPath(command string) string {
	f := strings.Fields(command)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func checkCommand(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Errorf("command %q contains control characters", s)
	}
	prog := CommandPath(s)
	switch {
	case prog == "":
		return errors.New("command is empty (want a path inside the package, like bin/hello)")
	case path.IsAbs(prog):
		return fmt.Errorf("path %q is absolute (want a path inside the package, like bin/hello)", prog)
	}
	clean := path.Clean(prog)
	if clean == ".." || strings.HasPrefix(clean, "../") || slices.Contains(strings.Split(clean, "/"), "..") {
		return fmt.Errorf("path %q escapes the package", prog)
	}
	if clean == "." {
		return fmt.Errorf("path %q is not a file", prog)
	}
	return nil
}

// ValidName reports whether s is a valid package or command name:
// lowercase letters and digits with single dashes between them, at most
// 40 characters (see internal/names).
func ValidName(s string) bool { return names.Valid(s) }

// CheckName says what is wrong with a name a user gave for an app (what
// "app") or a command (what "command"), or returns nil.
func CheckName(what, s string) error { return names.Check(what, s) }
