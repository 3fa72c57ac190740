package launch

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/dirs"
)

// hostRoot is the host's root directory, where the sandbox's init finds
// /etc/resolv.conf and /run before it pivots (tests point it elsewhere).
var hostRoot = "/"

// mountResolv makes /etc/resolv.conf resolve in a sandbox with the host's
// network: the base's /etc shows the host's link, but the sandbox has a
// /run of its own. When the link points into /run, its target is shown
// read-only at the same path: the agent's folder (dirs.NetRunRel), in
// which the agent replaces the file atomically, or else the file itself
// (systemd-resolved's stub-resolv.conf on a developer's host; a file bind
// keeps the file the link named when the sandbox was made, and does not
// follow an atomic replace).
func mountResolv(root string, s *Spec) error {
	if !s.Network {
		return nil
	}
	src, isDir := resolvSource(hostRoot)
	if src == "" {
		return nil
	}
	rel, err := filepath.Rel(hostRoot, src)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, rel)
	if isDir {
		return bindDir(src, dst, 0, ro|unix.MOUNT_ATTR_NOEXEC)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		return err
	}
	if err := mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return setattr(dst, 0, ro|unix.MOUNT_ATTR_NOEXEC)
}

// resolvSource returns what a sandbox must show for the resolv.conf link
// of the root directory root to resolve: the agent's folder (isDir), the
// link's target file, or "" when /etc/resolv.conf is no link into root's
// /run (a regular file shows through /etc) or its target is missing (or
// not a regular file: a further link).
// Absolute link targets are read below root.
func resolvSource(root string) (src string, isDir bool) {
	link := filepath.Join(root, "etc/resolv.conf")
	target, err := os.Readlink(link)
	if err != nil {
		return "", false
	}
	if filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	} else {
		target = filepath.Join(filepath.Dir(link), target)
	}
	if !strings.HasPrefix(target, filepath.Join(root, "run")+"/") {
		return "", false
	}
	if agent := filepath.Join(root, dirs.NetRunRel); filepath.Dir(target) == agent {
		if fi, err := os.Lstat(agent); err != nil || !fi.IsDir() {
			return "", false
		}
		return agent, true
	}
	if fi, err := os.Lstat(target); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return target, false
}
