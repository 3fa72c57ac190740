package manifest

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/names"
	"paddock.dev/paddock/internal/yamlstrict"
)

var (
	topFields    = []string{"name", "version", "type", "summary", "description", "confinement", "user", "apps", "hooks", "health-window", "plugs", "slots"}
	appFields    = []string{"command", "daemon", "plugs", "limits", "health", "restart", "after", "stop-timeout"}
	limitFields  = []string{"memory", "cpu-percent", "pids"}
	healthFields = []string{"command", "http", "tcp", "interval", "timeout", "retries"}
	hookFields   = []string{"command", "plugs"}

	types    = []string{TypeApp, TypeGadget, TypeBase}
	daemons  = []string{"simple", "oneshot", "notify"}
	restarts = []string{"on-failure", "always", "never"}
)

// top parses the top-level mapping into m and checks what is required.
func (p *parser) top(root *yaml.Node, m *Manifest) error {
	err := p.Fields(root, "", topFields, func(key, field string, _, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			m.Name, err = p.Str(v, field)
			if err == nil && m.Name != "" {
				err = p.checkName(v, field, m.Name, "package")
			}
		case "version":
			m.Version, err = p.Str(v, field)
			if err == nil && m.Version != "" {
				err = p.checkVersion(v, field, m.Version)
			}
		case "type":
			m.Type, err = p.Str(v, field)
			if err == nil && !slices.Contains(types, m.Type) {
				err = p.Errorf(v, field, "unknown type %q (want %s)", m.Type, strings.Join(types, ", "))
			}
		case "summary":
			m.Summary, err = p.Str(v, field)
			if err == nil {
				err = p.checkSummary(v, field, m.Summary)
			}
		case "description":
			m.Description, err = p.Str(v, field)
		case "confinement":
			m.Confinement, err = p.Str(v, field)
			if err == nil && !slices.Contains(confinements, m.Confinement) {
				err = p.Errorf(v, field, "unknown confinement %q (want %s)", m.Confinement, strings.Join(confinements, ", "))
			}
		case "user":
			m.User, err = p.Str(v, field)
			if err == nil && m.User != UserRoot {
				err = p.Errorf(v, field, "unknown user %q (want root, or leave user out to run as the app's own user)", m.User)
			}
		case "apps":
			m.Apps, err = p.apps(v, field)
			if err == nil {
				err = p.checkAfter(m.Apps)
			}
		case "hooks":
			m.Hooks, err = p.hooks(v, field)
		case "health-window":
			m.HealthWindow, err = p.duration(v, field)
			if err == nil && m.HealthWindow > MaxHealthWindow {
				err = p.Errorf(v, field, "%v is longer than %v", m.HealthWindow, MaxHealthWindow)
			}
		case "plugs":
			m.Plugs, err = p.topPlugs(v, field)
		case "slots":
			m.Slots, err = p.slots(v, field)
		}
		return err
	})
	if err != nil {
		return err
	}
	if m.Name == "" {
		return p.Errorf(root, "name", "missing (every package needs a name, like hello)")
	}
	if m.Version == "" {
		return p.Errorf(root, "version", "missing (every package needs a version, like 1.0)")
	}
	if m.Type == "" {
		m.Type = TypeApp
	}
	if m.Confinement == "" {
		m.Confinement = Strict
	}
	return p.checkPlugs(m)
}

func (p *parser) checkName(n *yaml.Node, field, s, what string) error {
	if len(s) > maxNameLen {
		return p.Errorf(n, field, "%s name %q is longer than %d characters", what, s, maxNameLen)
	}
	if !names.Pattern(s) {
		return p.Errorf(n, field, "invalid %s name %q (want lowercase letters and digits, with single dashes between them)", what, s)
	}
	return nil
}

func (p *parser) checkVersion(n *yaml.Node, field, s string) error {
	if len(s) > maxVersionLen {
		return p.Errorf(n, field, "version %q is longer than %d characters", s, maxVersionLen)
	}
	// The version ends up in file names (NAME_VERSION.pdk), hence no slash.
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '/' {
			return p.Errorf(n, field, "invalid version %q (want printable ASCII without spaces or slashes, like 1.0.2)", s)
		}
	}
	return nil
}

func (p *parser) checkSummary(n *yaml.Node, field, s string) error {
	if utf8.RuneCountInString(s) > maxSummaryLen {
		return p.Errorf(n, field, "longer than %d characters (put the rest in description)", maxSummaryLen)
	}
	if strings.ContainsAny(s, "\n\r") {
		return p.Errorf(n, field, "must be a single line (put the rest in description)")
	}
	return nil
}

func (p *parser) apps(n *yaml.Node, prefix string) (map[string]*App, error) {
	apps := make(map[string]*App)
	err := p.Fields(n, prefix, nil, func(key, field string, _, v *yaml.Node) error {
		if err := p.checkName(v, field, key, "app"); err != nil {
			return err
		}
		if hook, ok := strings.CutPrefix(key, HookCommandPrefix); ok && slices.Contains(HookNames, hook) {
			return p.Errorf(v, field, "the name %s is kept for the %s hook's sandbox (rename the command)", key, hook)
		}
		app, err := p.app(v, field)
		apps[key] = app
		return err
	})
	return apps, err
}

func (p *parser) app(n *yaml.Node, prefix string) (*App, error) {
	a := &App{}
	err := p.Fields(n, prefix, appFields, func(key, field string, _, v *yaml.Node) error {
		var err error
		switch key {
		case "command":
			a.Command, err = p.command(v, field)
		case "daemon":
			a.Daemon, err = p.Str(v, field)
			if err == nil && !slices.Contains(daemons, a.Daemon) {
				err = p.Errorf(v, field, "unknown daemon type %q (want %s, or leave it out for a command run on demand)", a.Daemon, strings.Join(daemons, ", "))
			}
		case "plugs":
			a.Plugs, a.PlugAttrs, err = p.plugDecls(v, field)
		case "limits":
			err = p.limits(v, field, &a.Limits)
		case "health":
			a.Health, err = p.health(v, field)
		case "restart":
			a.Restart, err = p.Str(v, field)
			if err == nil && !slices.Contains(restarts, a.Restart) {
				err = p.Errorf(v, field, "unknown restart policy %q (want %s)", a.Restart, strings.Join(restarts, ", "))
			}
		case "after":
			a.After, err = p.after(v, field)
		case "stop-timeout":
			a.StopTimeout, err = p.duration(v, field)
			if err == nil && a.StopTimeout > MaxStopTimeout {
				err = p.Errorf(v, field, "stop-timeout %s is longer than %s", a.StopTimeout, MaxStopTimeout)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, p.checkApp(n, prefix, a)
}

// checkApp checks what involves more than one field of an app.
func (p *parser) checkApp(n *yaml.Node, prefix string, a *App) error {
	if a.Command == "" {
		return p.FieldErrorf(prefix+".command", "missing (want a path inside the package, like bin/hello)")
	}
	if a.Daemon == "" {
		if a.Restart != "" {
			return p.FieldErrorf(prefix+".restart", "only a daemon can have a restart policy (add daemon: simple)")
		}
		if a.Health != nil {
			return p.FieldErrorf(prefix+".health", "only a daemon can have a health check (add daemon: simple)")
		}
		if a.After != nil {
			return p.FieldErrorf(prefix+".after", "only a daemon can start after others (add daemon: simple)")
		}
		if a.StopTimeout != 0 {
			return p.FieldErrorf(prefix+".stop-timeout", "only a daemon can have a stop timeout (add daemon: simple)")
		}
		return nil
	}
	if a.Restart == "" {
		a.Restart = "on-failure"
	}
	if a.StopTimeout == 0 {
		a.StopTimeout = DefaultStopTimeout
	}
	return nil
}

func (p *parser) limits(n *yaml.Node, prefix string, l *Limits) error {
	return p.Fields(n, prefix, limitFields, func(key, field string, _, v *yaml.Node) error {
		var err error
		var i int64
		switch key {
		case "memory":
			l.Memory, err = p.Size(v, field)
		case "cpu-percent":
			i, err = p.Int(v, field, maxCPUPercent)
			l.CPUPercent = int(i)
		case "pids":
			i, err = p.Int(v, field, 1<<22) // the kernel's pid_max ceiling
			l.Pids = int(i)
		}
		return err
	})
}

func (p *parser) health(n *yaml.Node, prefix string) (*Health, error) {
	h := &Health{Retries: -1}
	var kinds []string
	err := p.Fields(n, prefix, healthFields, func(key, field string, _, v *yaml.Node) error {
		var err error
		var i int64
		switch key {
		case "command":
			h.Command, err = p.command(v, field)
			kinds = append(kinds, key)
		case "http":
			h.HTTP, err = p.httpProbe(v, field)
			kinds = append(kinds, key)
		case "tcp":
			i, err = p.port(v, field)
			h.TCP = int(i)
			kinds = append(kinds, key)
		case "interval":
			h.Interval, err = p.duration(v, field)
			if err == nil && h.Interval < MinHealthInterval {
				err = p.Errorf(v, field, "%v is shorter than %v", h.Interval, MinHealthInterval)
			}
		case "timeout":
			h.Timeout, err = p.duration(v, field)
		case "retries":
			i, err = p.Int(v, field, maxRetries)
			h.Retries = int(i)
			if err == nil && i == 0 {
				err = p.Errorf(v, field, "must be at least 1 (the failures in a row that make the app unhealthy)")
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch len(kinds) {
	case 0:
		return nil, p.FieldErrorf(prefix+".command", "missing (want one of command: a path inside the package like bin/check, http: PORT/PATH like 8080/healthz, or tcp: PORT)")
	case 1:
	default:
		return nil, p.FieldErrorf(prefix+"."+kinds[1], "a health check has one of command, http and tcp, not both %s and %s", kinds[0], kinds[1])
	}
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = min(DefaultHealthTimeout, h.Interval)
	}
	if h.Retries < 0 {
		h.Retries = DefaultHealthRetries
	}
	if h.Timeout > h.Interval {
		return nil, p.FieldErrorf(prefix+".timeout", "%v is longer than the interval %v", h.Timeout, h.Interval)
	}
	return h, nil
}

// maxRetries bounds a health check's retries: beyond it, it is a typo.
const maxRetries = 100

// port parses a TCP port number, 1 to 65535.
func (p *parser) port(n *yaml.Node, field string) (int64, error) {
	i, err := p.Int(n, field, 65535)
	if err == nil && i == 0 {
		err = p.Errorf(n, field, "port 0 is not a port (want 1 to 65535)")
	}
	return i, err
}

// httpProbe parses an HTTP probe's target, PORT or PORT/PATH: a port on
// the sandbox's loopback and a path of printable ASCII without spaces.
func (p *parser) httpProbe(n *yaml.Node, field string) (string, error) {
	s, err := p.Str(n, field)
	if err != nil {
		return "", err
	}
	bad := func() (string, error) {
		return "", p.Errorf(n, field, "invalid http probe %q (want PORT/PATH on the app's loopback, like 8080/healthz)", s)
	}
	port, rest, _ := strings.Cut(s, "/")
	i, err := strconv.Atoi(port)
	if err != nil || i < 1 || i > 65535 || strconv.Itoa(i) != port || len(s) > maxHTTPProbe {
		return bad()
	}
	for _, r := range rest {
		if r <= ' ' || r >= 0x7f || r == '#' {
			return bad()
		}
	}
	return s, nil
}

// maxHTTPProbe bounds an http probe's PORT/PATH.
const maxHTTPProbe = 256

func (p *parser) hooks(n *yaml.Node, prefix string) (map[string]*Hook, error) {
	hooks := make(map[string]*Hook)
	err := p.Fields(n, prefix, nil, func(key, field string, _, v *yaml.Node) error {
		if !slices.Contains(HookNames, key) {
			return p.Errorf(v, field, "unknown hook (known hooks: %s)", strings.Join(HookNames, ", "))
		}
		h, err := p.hook(v, field, key)
		hooks[key] = h
		return err
	})
	return hooks, err
}

// hook parses one hook; "install:" with nothing after it is a hook with
// the default command hooks/NAME.
func (p *parser) hook(n *yaml.Node, prefix, name string) (*Hook, error) {
	h := &Hook{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		h.Command = "hooks/" + name
		return h, nil
	}
	err := p.Fields(n, prefix, hookFields, func(key, field string, _, v *yaml.Node) error {
		var err error
		switch key {
		case "command":
			h.Command, err = p.command(v, field)
		case "plugs":
			h.Plugs, err = p.plugs(v, field)
		}
		return err
	})
	if h.Command == "" {
		h.Command = "hooks/" + name
	}
	return h, err
}

func (m *Manifest) errorf(field, format string, args ...any) error {
	return yamlstrict.NewError(m.filename, m.lines.Line(field), field, format, args...)
}
