// Package manifest describes a paddock package: the types of meta/app.yaml
// and a strict parser for it. Every error names the file, the line and the
// field, so a developer can fix the manifest without guessing.
package manifest

import (
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/internal/yamlstrict"
)

// Path is where the manifest lives inside a package.
const Path = "meta/app.yaml"

// MaxSize is the largest manifest Parse accepts, in bytes.
const MaxSize = 256 << 10

// Package types.
const (
	TypeApp    = "app"
	TypeGadget = "gadget"
	TypeBase   = "base"
)

// Confinement modes: strict denies what the policy does not allow; devmode
// only logs it, for developing an app's policy.
const (
	Strict  = "strict"
	Devmode = "devmode"
)

var confinements = []string{Strict, Devmode, Classic}

// UserRoot is the only value of user: the app's commands run as root
// instead of the app's own user. The agent honours it only when the
// publisher's delegation grants root.
const UserRoot = "root"

// Defaults applied to a health check that leaves them out.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 10 * time.Second
	DefaultHealthRetries  = 3
	// MinHealthInterval keeps a probe from costing the device more than a
	// wakeup a second.
	MinHealthInterval = time.Second
)

// The bounds of health-window: a refresh's health gate.
const (
	DefaultHealthWindow = 30 * time.Second
	MaxHealthWindow     = 10 * time.Minute
)

// HealthWindowOrDefault is the package's health window, DefaultHealthWindow
// when it sets none.
func (m *Manifest) HealthWindowOrDefault() time.Duration {
	if m.HealthWindow > 0 {
		return m.HealthWindow
	}
	return DefaultHealthWindow
}

// HookNames lists the hooks a package may declare.
var HookNames = []string{"install", "post-refresh", "pre-refresh", "remove", "configure", "check-health"}

// Manifest is the parsed meta/app.yaml of a package.
type Manifest struct {
	Name        string `yaml:"name" json:"name"`
	Version     string `yaml:"version" json:"version"`
	Type        string `yaml:"type" json:"type"` // app, gadget or base; Parse fills in app
	Summary     string `yaml:"summary,omitempty" json:"summary,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Confinement string `yaml:"confinement,omitempty" json:"confinement,omitempty"` // strict, devmode or classic; Parse fills in strict
	// User is UserRoot to run the commands as root, or empty for the app's own unprivileged user.
	User  string           `yaml:"user,omitempty" json:"user,omitempty"`
	Apps  map[string]*App  `yaml:"apps,omitempty" json:"apps,omitempty"`
	Hooks map[string]*Hook `yaml:"hooks,omitempty" json:"hooks,omitempty"`
	// HealthWindow is how long a refresh waits for the new revision to be
	// healthy before it undoes itself (health-window:); zero means
	// DefaultHealthWindow (see HealthWindowOrDefault).
	HealthWindow time.Duration `yaml:"health-window,omitempty" json:"health-window,omitempty"`
	// Plugs are the app's top-level plugs, which every command has, by
	// name (see PlugsOf for a command's plugs).
	Plugs map[string]*Plug `yaml:"plugs,omitempty" json:"plugs,omitempty"`
	// Slots are what the app offers other apps (content folders), by name.
	Slots map[string]*Slot `yaml:"slots,omitempty" json:"slots,omitempty"`

	// filename and lines let CheckFiles point at the line of a bad command.
	filename string
	lines    yamlstrict.Lines
}

// App is one command of a package, run on demand or as a service.
type App struct {
	// Command is a path relative to the package root, optionally followed
	// by arguments separated by spaces ("bin/hello --greet"). No quoting.
	Command string `yaml:"command" json:"command"`
	Daemon  string `yaml:"daemon,omitempty" json:"daemon,omitempty"` // "", simple, oneshot or notify
	// Plugs are the command's own plugs, by name; PlugAttrs holds the
	// attributes of those written with some (see PlugsOf).
	Plugs     []string         `yaml:"plugs,omitempty" json:"plugs,omitempty"`
	PlugAttrs map[string]*Plug `yaml:"-" json:"plug-attrs,omitempty"`
	Limits    Limits           `yaml:"limits,omitempty" json:"limits,omitzero"`
	Health    *Health          `yaml:"health,omitempty" json:"health,omitempty"`
	// Restart is on-failure, always or never; Parse fills in on-failure
	// for daemons. Only daemons may set it.
	Restart string `yaml:"restart,omitempty" json:"restart,omitempty"`
	// After names other daemons of the same package that must have
	// started (a notify daemon: be ready; a oneshot: have ended well)
	// before this one starts. Only daemons may set it; no cycles.
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
	// StopTimeout is how long a stop waits after SIGTERM before it sends
	// SIGKILL to the daemon's process group; Parse fills in
	// DefaultStopTimeout for daemons.
	StopTimeout time.Duration `yaml:"stop-timeout,omitempty" json:"stop-timeout,omitempty"`
}

// DefaultStopTimeout is a daemon's stop-timeout when it sets none;
// MaxStopTimeout bounds what it may set.
const (
	DefaultStopTimeout = 10 * time.Second
	MaxStopTimeout     = 5 * time.Minute
)

// Limits caps the resources of an app; zero means no limit.
type Limits struct {
	Memory     int64 `yaml:"memory,omitempty" json:"memory,omitempty"`           // bytes; written "64M", "1G" or a plain number
	CPUPercent int   `yaml:"cpu-percent,omitempty" json:"cpu-percent,omitempty"` // percent of one CPU
	Pids       int   `yaml:"pids,omitempty" json:"pids,omitempty"`
}

// Health is a daemon's probe, which the agent runs every Interval: exactly
// one of a command run in the daemon's sandbox (a non-zero exit fails), an
// HTTP GET of a path on a port of the sandbox's loopback (a status other
// than 2xx or 3xx fails) or a TCP connection to such a port (a refused
// connection fails). A probe that takes longer than Timeout fails; Retries
// failures in a row make the app unhealthy.
type Health struct {
	Command string `yaml:"command,omitempty" json:"command,omitempty"`
	// HTTP is "PORT/PATH" (or a bare PORT, for the path /), like 8080/healthz.
	HTTP string `yaml:"http,omitempty" json:"http,omitempty"`
	// TCP is a port number.
	TCP      int           `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	Interval time.Duration `yaml:"interval" json:"interval"` // written "10s"
	Timeout  time.Duration `yaml:"timeout" json:"timeout"`
	Retries  int           `yaml:"retries" json:"retries"` // Parse fills in DefaultHealthRetries
}

// HTTPTarget splits an HTTP probe's "PORT/PATH" into its port and path
// ("/" when left out); Parse checked it.
func (h *Health) HTTPTarget() (port int, path string) {
	p, rest, _ := strings.Cut(h.HTTP, "/")
	port, _ = strconv.Atoi(p)
	return port, "/" + rest
}

// Kind returns which probe h is: command, http or tcp.
func (h *Health) Kind() string {
	switch {
	case h.HTTP != "":
		return "http"
	case h.TCP != 0:
		return "tcp"
	}
	return "command"
}

// HookCommandPrefix starts the name of the command a hook runs as, with a
// policy and a sandbox of its own: the install hook is command
// hook-install ('paddock run APP.hook-install'). No app command may have
// such a name.
const HookCommandPrefix = "hook-"

// HookCommand returns the command that hook runs as.
func HookCommand(hook string) string { return HookCommandPrefix + hook }

// HookOf returns the hook that command cmd runs (cmd is HookCommand of a
// hook m declares), or nil.
func (m *Manifest) HookOf(cmd string) *Hook {
	name, ok := strings.CutPrefix(cmd, HookCommandPrefix)
	if !ok {
		return nil
	}
	return m.Hooks[name]
}

// Hook is a command run at a point of the package's life cycle.
type Hook struct {
	Command string   `yaml:"command" json:"command"` // Parse fills in hooks/NAME
	Plugs   []string `yaml:"plugs,omitempty" json:"plugs,omitempty"`
}

// Error is a problem in a manifest, located by file, line and field, such
// as apps.hello.command.
type Error = yamlstrict.Error

// Filename returns the name the manifest was parsed under.
func (m *Manifest) Filename() string { return m.filename }
