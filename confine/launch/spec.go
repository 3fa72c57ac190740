// Package launch runs app commands in their sandbox: `paddock run`, and the
// same path for the agent's services. One launcher process joins the app's
// cgroup and starts the sandbox's init in new namespaces; the init builds
// the mount namespace, drops privileges on the thread that forks the app,
// loads the precompiled seccomp filter, enters the AppArmor profile and
// execs the command, then reaps and forwards signals until it exits.
package launch

import (
	"time"

	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/profiles"
)

// Spec is everything the sandbox needs, resolved by the launcher before the
// namespaces exist. Host paths are absolute paths on the host (under the
// root directory); sandbox paths are where the sandbox sees them.
type Spec struct {
	// App, Command and Revision name what runs.
	App      string `json:"app"`
	Command  string `json:"command"`
	Revision int    `json:"revision"`
	// Label is the security label, paddock.APP.CMD.
	Label string `json:"label"`

	// Scratch is an empty host directory on which the sandbox's root is
	// built, in the sandbox's own mount namespace.
	Scratch string `json:"scratch"`

	// HostAppDir is the mounted revision; it appears read-only at AppDir.
	HostAppDir string `json:"host-app-dir"`
	AppDir     string `json:"app-dir"`
	// HostDataDir and HostCommonDir are the writable data; they appear at DataDir and CommonDir.
	HostDataDir   string `json:"host-data-dir"`
	DataDir       string `json:"data-dir"`
	HostCommonDir string `json:"host-common-dir"`
	CommonDir     string `json:"common-dir"`

	// UID and GID are who the app runs as: its own user and group, or 0
	// for an app granted root. Its only supplementary group is GID.
	UID int `json:"uid"`
	GID int `json:"gid"`

	// Argv is the command line, its first word a path inside the sandbox; Env is the whole environment.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// BaseArgc counts the words of Argv that come from the command, before the caller's arguments.
	BaseArgc int `json:"base-argc"`

	// Network keeps the host's network namespace; otherwise the sandbox
	// has only loopback.
	Network bool `json:"network"`
	// Mounts are host directories the policy shows, read-only unless
	// marked Write; the sandbox has no /sys unless one of them is.
	Mounts []profiles.Mount `json:"mounts,omitempty"`

	// Seccomp is the compiled filter program, loaded just before exec, read from SeccompPath.
	Seccomp     []byte `json:"seccomp"`
	SeccompPath string `json:"seccomp-path"`
	// AppArmor is true when the profile Label is loaded and must be entered.
	AppArmor bool `json:"apparmor"`

	// Cgroup is the app command's device allowlist and limits.
	Cgroup cgroup.Spec `json:"cgroup"`

	// Policy is the policy file's bytes, read from PolicyPath: its digest
	// keys the kept sandbox, and the fast path compares it with the file.
	Policy     []byte `json:"policy"`
	PolicyPath string `json:"policy-path"`

	// HostCtlDir is the folder of the agent's in-app socket, which the
	// sandbox shows at /run/paddock-ctl; empty for none.
	HostCtlDir string `json:"host-ctl-dir,omitempty"`

	// OneOff marks the launch of something other than the command in its
	// sandbox (a health check, a hook): it leaves the fast path's launch
	// file alone, which must keep starting the command itself.
	OneOff bool `json:"one-off,omitempty"`

	// IdleTimeout is how long the kept sandbox's init stays without an app
	// process in it before it ends; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration `json:"idle-timeout,omitempty"`
}
