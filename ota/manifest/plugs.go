package manifest

import (
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Classic is the confinement of an app that runs without a sandbox: the
// host's filesystem, no AppArmor or seccomp, but still as the app's own
// user. The agent installs it only when the publisher's delegation grants
// classic; this agent refuses it even then, as its launcher has no classic
// mode yet.
const Classic = "classic"

// Plug is a plug an app declares with its attributes.
type Plug struct {
	// Interface is the plug's interface; Parse fills in the plug's name.
	Interface string `yaml:"interface" json:"interface"`
	// Target is where a content plug's shared folder appears: a path
	// relative to the app's common data ($APP_COMMON); the plug's name
	// when empty.
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
}

// Slot is what an app offers other apps: a folder of its common data
// (content).
type Slot struct {
	Interface string `yaml:"interface" json:"interface"`
	// Path is the shared folder, relative to the app's common data.
	Path string `yaml:"path" json:"path"`
	// Write lets connected apps write the folder; otherwise they only read it.
	Write bool `yaml:"write,omitempty" json:"write,omitempty"`
}

// NamedPlug is a plug with its name.
type NamedPlug struct {
	Name string `json:"name"`
	Plug
}

var (
	plugFields = []string{"interface", "target"}
	slotFields = []string{"interface", "path", "write"}
	// relPathRE is a path below an app's data: plain characters only, as
	// it ends up in AppArmor rules.
	relPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`) })
)

const maxRelPath = 255

// PlugsOf returns the plugs of command cmd, sorted by name: the app's
// top-level plugs, which every command has, and the command's own.
func (m *Manifest) PlugsOf(cmd string) []NamedPlug {
	var out []NamedPlug
	for name, pl := range m.Plugs {
		out = append(out, NamedPlug{Name: name, Plug: *pl})
	}
	if h := m.HookOf(cmd); h != nil {
		for _, name := range h.Plugs {
			if _, ok := m.Plugs[name]; !ok {
				out = append(out, NamedPlug{Name: name, Plug: Plug{Interface: name}})
			}
		}
	}
	if a := m.Apps[cmd]; a != nil {
		for _, name := range a.Plugs {
			pl := Plug{Interface: name}
			if attrs := a.PlugAttrs[name]; attrs != nil {
				pl = *attrs
			}
			out = append(out, NamedPlug{Name: name, Plug: pl})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AllPlugs returns every plug of the app, top-level and of each command,
// sorted by name; a plug of several commands is listed once.
func (m *Manifest) AllPlugs() []NamedPlug {
	out := m.PlugsOf("") // the top-level plugs, even of an app without commands
	for name := range m.Apps {
		for _, pl := range m.PlugsOf(name) {
			if !slices.ContainsFunc(out, func(o NamedPlug) bool { return o.Name == pl.Name }) {
				out = append(out, pl)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// plugDecls parses plugs written as a list of names, or as a mapping of
// names to nothing or to attributes (interface, target). It returns the
// names in order and the attributes of those that have some.
func (p *parser) plugDecls(n *yaml.Node, field string) ([]string, map[string]*Plug, error) {
	if n.Kind != yaml.MappingNode {
		names, err := p.plugs(n, field)
		return names, nil, err
	}
	var names []string
	attrs := map[string]*Plug{}
	err := p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
		if !plugRe().MatchString(key) {
			return p.Errorf(k, field, "invalid plug name %q (want lowercase letters, digits and dashes, starting with a letter)", key)
		}
		names = append(names, key)
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return nil
		}
		pl, err := p.plug(v, field, key)
		attrs[key] = pl
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	return names, attrs, nil
}

func (p *parser) plug(n *yaml.Node, prefix, name string) (*Plug, error) {
	pl := &Plug{}
	err := p.Fields(n, prefix, plugFields, func(key, field string, _, v *yaml.Node) error {
		s, err := p.Str(v, field)
		if err != nil {
			return err
		}
		switch key {
		case "interface":
			if !plugRe().MatchString(s) {
				return p.Errorf(v, field, "invalid interface name %q (see 'paddock interfaces')", s)
			}
			pl.Interface = s
		case "target":
			if err := p.relPath(v, field, s); err != nil {
				return err
			}
			pl.Target = s
		}
		return nil
	})
	if pl.Interface == "" {
		pl.Interface = name
	}
	return pl, err
}

// topPlugs parses the top-level plugs: every command's.
func (p *parser) topPlugs(n *yaml.Node, field string) (map[string]*Plug, error) {
	names, attrs, err := p.plugDecls(n, field)
	if err != nil {
		return nil, err
	}
	out := map[string]*Plug{}
	for _, name := range names {
		if pl := attrs[name]; pl != nil {
			out[name] = pl
			continue
		}
		out[name] = &Plug{Interface: name}
	}
	return out, nil
}

// slots parses the slots an app offers other apps.
func (p *parser) slots(n *yaml.Node, prefix string) (map[string]*Slot, error) {
	out := map[string]*Slot{}
	err := p.Fields(n, prefix, nil, func(key, field string, k, v *yaml.Node) error {
		if !plugRe().MatchString(key) {
			return p.Errorf(k, field, "invalid slot name %q (want lowercase letters, digits and dashes, starting with a letter)", key)
		}
		s := &Slot{}
		out[key] = s
		err := p.Fields(v, field, slotFields, func(attr, field string, _, v *yaml.Node) error {
			switch attr {
			case "interface", "path":
				str, err := p.Str(v, field)
				if err != nil {
					return err
				}
				if attr == "interface" {
					if !plugRe().MatchString(str) {
						return p.Errorf(v, field, "invalid interface name %q (want content)", str)
					}
					s.Interface = str
					return nil
				}
				s.Path = str
				return p.relPath(v, field, str)
			case "write":
				if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
					return p.Errorf(v, field, "must be true or false")
				}
				s.Write = v.Value == "true"
			}
			return nil
		})
		if err != nil {
			return err
		}
		if s.Interface == "" {
			return p.Errorf(k, field+".interface", "missing (want content)")
		}
		if s.Path == "" {
			return p.Errorf(k, field+".path", "missing (the shared folder, relative to the app's common data, like shared/media)")
		}
		return nil
	})
	return out, err
}

// relPath checks a path below an app's data.
func (p *parser) relPath(n *yaml.Node, field, s string) error {
	if len(s) > maxRelPath || !relPathRE().MatchString(s) || path.Clean(s) != s || !filepath.IsLocal(s) {
		return p.Errorf(n, field, "%q is not a path inside the app's data (want a relative path of letters, digits and ._+-, like shared/media)", s)
	}
	return nil
}

// checkPlugs checks that no plug is declared both at the top level and
// by a command.
func (p *parser) checkPlugs(m *Manifest) error {
	for _, name := range sortedKeys(m.Apps) {
		for _, pl := range m.Apps[name].Plugs {
			if _, dup := m.Plugs[pl]; dup {
				return p.FieldErrorf("apps."+name+".plugs", "plug %q is declared at the top level already, for every command (declare it in one place)", pl)
			}
		}
	}
	return nil
}
