// Package dirs holds every path paddock touches, relative to one root
// directory. On a device the root is "/"; tests and demos point it at a
// temporary directory with SetRootDir or the PADDOCK_ROOT variable, and the
// real code runs unchanged.
package dirs

import (
	"os"
	"path/filepath"
)

// The paths below are recomputed by SetRootDir. Read them after the root is set.
var (
	// Root is the directory every other path is relative to.
	Root string
	// TrustedDir holds the trusted root public keys (read-only base on a device).
	TrustedDir string
	// LibDir is paddock's writable state directory.
	LibDir string
	// StateFile is the agent's persisted state.
	StateFile string
	// PackagesDir holds installed package blobs, NAME_REV.pdk.
	PackagesDir string
	// AssertionsDir holds verified assertions, NAME_REV.assert.
	AssertionsDir string
	// AppsDir holds the read-only mounts of each revision and the current links.
	AppsDir string
	// DataDir holds per-revision and shared writable app data.
	DataDir string
	// ProfilesDir holds generated security profiles.
	ProfilesDir string
	// RunDir holds runtime files such as sockets.
	RunDir string
	// SocketPath is the admin API socket.
	SocketPath string
	// CtlSocketPath is the in-app API socket: a link to the socket in
	// CtlSocketDir, a folder that every sandbox shows at the same place
	// (so that a kept sandbox sees the socket of an agent started after it).
	CtlSocketPath string
	CtlSocketDir  string
)

// CtlSocketName is the name of the in-app API socket, in CtlSocketDir and
// in a sandbox's /run.
const CtlSocketName = "paddock-ctl.sock"

// NetRunRel is the folder, relative to the root, where the agent writes
// the name servers it brought the network up with (ResolvConfRel), at
// which the base's /etc/resolv.conf points. It is a folder of its own
// (mode 0755, its file 0644) so that a sandbox with the host's network
// can be shown it without the rest of the run directory; the agent
// replaces the file atomically, so a sandbox binds the folder.
const NetRunRel = "run/paddock-net"

// ResolvConfRel is the agent's resolv.conf, relative to the root.
const ResolvConfRel = NetRunRel + "/resolv.conf"

// callbacks are called with the new root by SetRootDir (AddRootDirCallback).
var callbacks []func(root string)

// LibRel is LibDir relative to the root: where the boot stage mounts the
// data partition's state in the base, and where images put it.
const LibRel = "var/lib/paddock"

func init() {
	SetRootDir(os.Getenv("PADDOCK_ROOT"))
}

// AddRootDirCallback calls f with the root now and again each time
// SetRootDir changes it. Packages that keep paths of their own below the
// root (boot's /proc, /sys and /dev) follow the one root with it, as
// snapd's dirs.AddRootDirCallback does.
func AddRootDirCallback(f func(root string)) {
	callbacks = append(callbacks, f)
	f(Root)
}

// SetRootDir points every path at root; an empty root means "/".
func SetRootDir(root string) {
	if root == "" {
		root = "/"
	}
	root = filepath.Clean(root)
	Root = root
	TrustedDir = filepath.Join(root, "etc/paddock/trusted")
	LibDir = filepath.Join(root, LibRel)
	StateFile = filepath.Join(LibDir, "state.json")
	PackagesDir = filepath.Join(LibDir, "packages")
	AssertionsDir = filepath.Join(LibDir, "assertions")
	AppsDir = filepath.Join(root, "apps")
	DataDir = filepath.Join(LibDir, "data")
	ProfilesDir = filepath.Join(LibDir, "profiles")
	RunDir = filepath.Join(root, "run")
	SocketPath = filepath.Join(RunDir, "paddock.sock")
	CtlSocketPath = filepath.Join(RunDir, CtlSocketName)
	CtlSocketDir = filepath.Join(RunDir, "paddock-ctl")
	for _, f := range callbacks {
		f(root)
	}
}

// AppDir is where revision rev of app name is mounted; rev "current" names the active link.
func AppDir(name, rev string) string { return filepath.Join(AppsDir, name, rev) }

// AppDataDir is the writable data of revision rev of app name; rev "common" is shared by all revisions.
func AppDataDir(name, rev string) string { return filepath.Join(DataDir, name, rev) }
