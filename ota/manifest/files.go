package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// maxLinks bounds symlink resolution, like the kernel's MAXSYMLINKS.
const maxLinks = 40

// CheckFiles reports whether every app, health and hook command of m names
// a regular, executable file inside root. Symlinks are followed only while
// they stay inside root (root must implement fs.ReadLinkFS for that, as
// os.DirFS does; otherwise symlinks are followed as fs.Stat does).
func (m *Manifest) CheckFiles(root fs.FS) error {
	for _, c := range m.commands() {
		if err := checkFile(root, CommandPath(c.command)); err != nil {
			var fe *fileError
			if errors.As(err, &fe) {
				return m.errorf(c.field, fe.format, fe.args...)
			}
			return m.errorf(c.field, "cannot resolve the command's path: %v", err)
		}
	}
	return nil
}

// fileError is a problem with a command's file, kept as a format and its
// values so that the *Error made of it can be redacted.
type fileError struct {
	format string
	args   []any
}

func (e *fileError) Error() string { return fmt.Sprintf(e.format, e.args...) }

func fileErrorf(format string, args ...any) error { return &fileError{format, args} }

type fieldCommand struct{ field, command string }

// commands lists every command of m with its field, in a stable order.
func (m *Manifest) commands() []fieldCommand {
	var out []fieldCommand
	for _, name := range sortedKeys(m.Apps) {
		a := m.Apps[name]
		out = append(out, fieldCommand{"apps." + name + ".command", a.Command})
		if a.Health != nil && a.Health.Command != "" {
			out = append(out, fieldCommand{"apps." + name + ".health.command", a.Health.Command})
		}
	}
	for _, name := range sortedKeys(m.Hooks) {
		field := "hooks." + name + ".command"
		if _, ok := m.lines[field]; !ok {
			field = "hooks." + name // the default hooks/NAME: point at the hook
		}
		out = append(out, fieldCommand{field, m.Hooks[name].Command})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func checkFile(root fs.FS, prog string) error {
	if err := checkCommand(prog); err != nil {
		return err
	}
	fi, err := statInside(root, path.Clean(prog))
	if errors.Is(err, fs.ErrNotExist) {
		return fileErrorf("%q does not exist in the package", prog)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fileErrorf("%q is not a regular file", prog)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fileErrorf("%q is not executable (run chmod +x %s)", prog, prog)
	}
	return nil
}

// statInside stats name in root, following symlinks only inside root.
func statInside(root fs.FS, name string) (fs.FileInfo, error) {
	rl, ok := root.(fs.ReadLinkFS)
	if !ok {
		return fs.Stat(root, name)
	}
	var done []string // resolved components
	todo := strings.Split(name, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return nil, fileErrorf("%q leads outside the package through a symlink", name)
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(slices.Clone(done), c)...)
		fi, err := rl.Lstat(cur)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) == 0 {
				return fi, nil
			}
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return nil, fileErrorf("%q: too many levels of symlinks", name)
		}
		target, err := rl.ReadLink(cur)
		if err != nil {
			return nil, err
		}
		if path.IsAbs(target) {
			return nil, fileErrorf("%q is a symlink to the absolute path %q, outside the package", cur, target)
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	// The path resolved to the package root itself.
	return fs.Stat(root, ".")
}
