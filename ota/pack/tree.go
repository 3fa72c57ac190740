package pack

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxLinks bounds symlink resolution, like the kernel's MAXSYMLINKS.
const maxLinks = 40

// checkTree refuses what must not go into a package: symlinks that lead
// outside the tree (absolute, or escaping with ..), and device nodes,
// sockets and fifos.
func checkTree(dir string) error {
	root := os.DirFS(dir).(fs.ReadLinkFS)
	return fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", filepath.Join(dir, name), err)
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			if err := checkLink(root, name); err != nil {
				return fmt.Errorf("cannot pack %s: %w (packages must be self-contained: copy the file in instead)", dir, err)
			}
		case t&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			return fmt.Errorf("cannot pack %s: %s is a %v, not a file, directory or symlink", dir, name, t.Type())
		}
		return nil
	})
}

// checkLink reports an error if the symlink name, resolved the way the
// kernel would with the package mounted anywhere, leaves the package.
// Links to missing files inside the package are allowed.
func checkLink(root fs.ReadLinkFS, name string) error {
	target, err := root.ReadLink(name)
	if err != nil {
		return err
	}
	if path.IsAbs(target) {
		return fmt.Errorf("symlink %s points to the absolute path %s", name, target)
	}
	done := strings.Split(path.Dir(name), "/")
	if done[0] == "." {
		done = nil
	}
	todo := strings.Split(target, "/")
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return fmt.Errorf("symlink %s points to %s, outside the package", name, target)
			}
			done = done[:len(done)-1]
			continue
		}
		done = append(done, c)
		cur := path.Join(done...)
		fi, err := root.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// Missing or not a link: the rest resolves lexically, and
			// the loop keeps checking its ".." components.
			continue
		}
		if links++; links > maxLinks {
			return fmt.Errorf("symlink %s: too many levels of symlinks", name)
		}
		next, err := root.ReadLink(cur)
		if err != nil {
			return err
		}
		if path.IsAbs(next) {
			return fmt.Errorf("symlink %s leads through %s to the absolute path %s", name, cur, next)
		}
		done = done[:len(done)-1]
		todo = append(strings.Split(next, "/"), todo...)
	}
	return nil
}
