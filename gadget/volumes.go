package gadget

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/partition"
)

var (
	schemas     = []string{SchemaGPT, SchemaMBR}
	roles       = []string{RoleBoot, RoleBootenv, RoleBase, RoleData}
	filesystems = []string{FilesystemVFAT, FilesystemExt4, FilesystemNone}
)

// roleNames are the structure names each role requires (package boot
// finds partitions by these names); roleFS the filesystem.
var (
	roleNames = map[string][]string{
		RoleBoot:    {partition.Boot},
		RoleBootenv: {partition.Bootenv},
		RoleBase:    {partition.BaseA, partition.BaseB},
		RoleData:    {partition.Data},
	}
	roleFS = map[string]string{
		RoleBoot:    FilesystemVFAT,
		RoleBootenv: FilesystemNone,
		RoleBase:    FilesystemNone,
		RoleData:    FilesystemExt4,
	}
)

// MinBootenvSize is the smallest system-bootenv structure: two copies of
// the 4096-byte record.
const MinBootenvSize = 8192

const maxStructures = 128 // a GPT's default number of entries

func (p *parser) volumes(n *yaml.Node, field string, g *Gadget) error {
	g.Volumes = make(map[string]*Volume)
	return p.Fields(n, field, nil, func(key, field string, k, v *yaml.Node) error {
		name, err := p.name(k, field, "volume")
		if err != nil {
			return err
		}
		vol := &Volume{Name: name}
		if err := p.volume(v, field, vol); err != nil {
			return err
		}
		g.Volumes[name] = vol
		return nil
	})
}

func (p *parser) volume(n *yaml.Node, prefix string, vol *Volume) error {
	var structures *yaml.Node
	err := p.Fields(n, prefix, []string{"schema", "structures"}, func(key, field string, k, v *yaml.Node) error {
		switch key {
		case "schema":
			s, err := p.Str(v, field)
			if err != nil {
				return err
			}
			if !slices.Contains(schemas, s) {
				return p.Errorf(v, field, "unknown schema %q (want gpt or mbr)", s)
			}
			vol.Schema = s
		case "structures":
			structures = k
			return p.Seq(v, field, func(i int, field string, v *yaml.Node) error {
				if i >= maxStructures {
					return p.Errorf(v, field, "more than %d structures", maxStructures)
				}
				s := &Structure{}
				if err := p.structure(v, field, s); err != nil {
					return err
				}
				vol.Structures = append(vol.Structures, s)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if vol.Schema == "" {
		vol.Schema = SchemaGPT
	}
	if len(vol.Structures) == 0 {
		if structures == nil {
			structures = n
		}
		return p.Errorf(structures, prefix+".structures", "no structures (list the partitions of the disk)")
	}
	return p.checkLayout(vol, prefix, structures)
}

func (p *parser) structure(n *yaml.Node, prefix string, s *Structure) error {
	known := []string{"name", "role", "type", "size", "filesystem", "content"}
	err := p.Fields(n, prefix, known, func(key, field string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			s.Name, err = p.name(v, field, "structure")
		case "role":
			s.Role, err = p.oneOf(v, field, "role", roles)
		case "type":
			s.Type, err = p.partType(v, field)
		case "size":
			s.Size, err = p.Size(v, field)
			if err == nil && (s.Size <= 0 || s.Size%512 != 0) {
				err = p.Errorf(v, field, "size %d is not a positive multiple of 512 bytes", s.Size)
			}
		case "filesystem":
			s.Filesystem, err = p.oneOf(v, field, "filesystem", filesystems)
		case "content":
			err = p.Seq(v, field, func(_ int, field string, v *yaml.Node) error {
				c, err := p.content(v, field)
				s.Content = append(s.Content, c)
				return err
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, f := range []struct{ name, val string }{{"name", s.Name}, {"size", fmt.Sprint(s.Size)}} {
		if f.val == "" || f.val == "0" {
			return p.Errorf(n, prefix+"."+f.name, "missing (every structure needs a name and a size)")
		}
	}
	if s.Type == "" {
		s.Type = "linux"
		if s.Role == RoleBoot {
			s.Type = "esp"
		}
	}
	if s.Filesystem == "" {
		s.Filesystem = FilesystemNone
		if fs, ok := roleFS[s.Role]; ok {
			s.Filesystem = fs
		}
	}
	return p.checkStructure(n, prefix, s)
}

func (p *parser) checkStructure(n *yaml.Node, prefix string, s *Structure) error {
	if names, ok := roleNames[s.Role]; ok && !slices.Contains(names, s.Name) {
		return p.Errorf(n, prefix+".name", "a %s structure must be named %s, not %q (the boot stage finds partitions by name)", s.Role, strings.Join(names, " or "), s.Name)
	}
	if fs, ok := roleFS[s.Role]; ok && s.Filesystem != fs {
		return p.Errorf(n, prefix+".filesystem", "a %s structure has filesystem %s, not %s", s.Role, fs, s.Filesystem)
	}
	if s.Role == RoleBootenv && s.Size < MinBootenvSize {
		return p.Errorf(n, prefix+".size", "a %s structure needs at least %d bytes, got %d", s.Role, MinBootenvSize, s.Size)
	}
	for i, c := range s.Content {
		field := fmt.Sprintf("%s.content[%d]", prefix, i)
		if c.Image != "" && s.Filesystem != FilesystemNone {
			return p.Errorf(n, field, "image content needs filesystem none (use source and target to copy files into a %s filesystem)", s.Filesystem)
		}
		if c.Image == "" && s.Filesystem == FilesystemNone {
			return p.Errorf(n, field, "a structure without a filesystem takes an image, not source and target")
		}
		if c.Image != "" && len(s.Content) > 1 {
			return p.Errorf(n, field, "a raw structure takes one image")
		}
	}
	return nil
}

func (p *parser) oneOf(n *yaml.Node, field, what string, allowed []string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", p.Errorf(n, field, "unknown %s %q (want one of %s)", what, s, strings.Join(allowed, ", "))
	}
	return s, nil
}

func (p *parser) partType(n *yaml.Node, field string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	if _, ok := TypeShorthands[s]; ok || guidRe().MatchString(s) || mbrTypeRe().MatchString(s) {
		return s, nil
	}
	return "", p.Errorf(n, field, "invalid type %q (want a GPT type GUID, an MBR type byte such as 83, or one of esp, linux, basic-data, bios-boot)", s)
}

// content parses one content entry: {source, target} or {image}.
func (p *parser) content(n *yaml.Node, prefix string) (*Content, error) {
	c := &Content{}
	err := p.Fields(n, prefix, []string{"source", "target", "image"}, func(key, field string, k, v *yaml.Node) error {
		s, err := p.Str(v, field)
		if err != nil {
			return err
		}
		if !localPath(s) {
			return p.Errorf(v, field, "path %q must be relative and stay inside its directory", s)
		}
		switch key {
		case "source":
			c.Source = s
		case "target":
			c.Target = s
		case "image":
			c.Image = s
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case c.Image != "" && (c.Source != "" || c.Target != ""):
		return nil, p.Errorf(n, prefix, "give either image, or source and target, not both")
	case c.Image == "" && (c.Source == "" || c.Target == ""):
		return nil, p.Errorf(n, prefix, "give source and target (a file of the gadget and where it goes), or image")
	}
	return c, nil
}

// localPath reports whether s is a clean relative path inside its root.
func localPath(s string) bool {
	return s != "" && len(s) <= maxPathLen && !path.IsAbs(s) && path.Clean(s) == s && s != "." &&
		!strings.HasPrefix(s, "../") && s != ".." && !strings.ContainsRune(s, 0)
}

// checkLayout checks what depends on several structures: unique names,
// one of each role (two bases), and that GPT structures have GPT types.
func (p *parser) checkLayout(vol *Volume, prefix string, n *yaml.Node) error {
	seen := make(map[string]bool)
	count := make(map[string]int)
	for i, s := range vol.Structures {
		field := fmt.Sprintf("%s.structures[%d]", prefix, i)
		if seen[s.Name] {
			return p.Errorf(n, field+".name", "duplicate structure name %q", s.Name)
		}
		seen[s.Name] = true
		count[s.Role]++
		if vol.Schema == SchemaGPT && mbrTypeRe().MatchString(s.Type) {
			return p.Errorf(n, field+".type", "%q is an MBR type; a gpt volume needs a GUID or a shorthand", s.Type)
		}
		if vol.Schema == SchemaMBR && guidRe().MatchString(s.Type) {
			return p.Errorf(n, field+".type", "%q is a GPT type; an mbr volume needs a type byte such as 83 or a shorthand", s.Type)
		}
		if vol.Schema == SchemaMBR && s.Type == "bios-boot" {
			return p.Errorf(n, field+".type", "bios-boot is a GPT type")
		}
	}
	for _, role := range roles {
		if max := len(roleNames[role]); count[role] > max {
			return p.Errorf(n, prefix+".structures", "%d %s structures, want at most %d", count[role], role, max)
		}
	}
	return nil
}
