package boot

import (
	"path/filepath"

	"paddock.dev/paddock/internal/dirs"
)

// The paths init reads and mounts, relative to the one root of package
// dirs. On a device the root is "/" (the initramfs in stage 1, the base in
// stage 2); tests point it at a temporary directory (dirstest.SetRoot) and
// run the real code on a fake /proc and /sys.
var (
	rootDir       string
	procDir       string
	sysDir        string
	procCmdline   string // the kernel command line
	sysClassBlock string // one directory per block device, with a uevent file
	devDir        string // device nodes (devtmpfs)
	modulesDir    string // /lib/modules: KVER/paddock.modules and modules.dep
	newRootDir    string // where stage 1 assembles the base before switching to it
	earlyDataDir  string // where stage 1 mounts the data partition before the base
	baseMarker    string // exists in the base image only: we are in stage 2
	hostnameFile  string
)

// Programs init runs, inside the base.
const (
	paddockBinary = "/usr/bin/paddock"
	shellBinary   = "/bin/sh"
	// selfExe is init's own binary, which the agent runs from: the
	// initramfs's when stage 2 goes on in its process (it is in memory
	// already, while the base's would be paged in from the compressed
	// SquashFS: half a second under TCG), else the base's.
	selfExe = "/proc/self/exe"
)

func init() { dirs.AddRootDirCallback(setRootDir) }

// setRootDir points every path at root; dirs calls it when its root changes.
func setRootDir(root string) {
	rootDir = filepath.Clean(root)
	at := func(p string) string { return filepath.Join(rootDir, p) }
	procDir = at("proc")
	sysDir = at("sys")
	procCmdline = at("proc/cmdline")
	sysClassBlock = at("sys/class/block")
	devDir = at("dev")
	modulesDir = at("lib/modules")
	newRootDir = at("newroot")
	earlyDataDir = at("data")
	baseMarker = at("etc/paddock-base")
	hostnameFile = at("etc/hostname")
}
