package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const full = `name: hello
version: 1.0
summary: Says hello
description: |
  Longer text.
user: root
apps:
  hello:
    command: bin/hello --greet
    plugs: [network, serial-port]
  web:
    command: bin/web
    daemon: simple
    restart: always
    limits:
      memory: 64M
      cpu-percent: 50
      pids: 100
    health:
      command: bin/check
      interval: 10s
      timeout: 2s
  once:
    command: bin/once
    daemon: oneshot
hooks:
  install:
  configure:
    command: bin/configure
    plugs: [network]
`

func TestParseFull(t *testing.T) {
	m, err := Parse([]byte(full), "meta/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{
		Name: "hello", Version: "1.0", Type: "app", Summary: "Says hello", Description: "Longer text.\n", Confinement: Strict, User: UserRoot,
		Apps: map[string]*App{
			"hello": {Command: "bin/hello --greet", Plugs: []string{"network", "serial-port"}},
			"web": {Command: "bin/web", Daemon: "simple", Restart: "always",
				Limits: Limits{Memory: 64 << 20, CPUPercent: 50, Pids: 100},
				Health: &Health{Command: "bin/check", Interval: 10 * time.Second, Timeout: 2 * time.Second, Retries: DefaultHealthRetries}, StopTimeout: DefaultStopTimeout},
			"once": {Command: "bin/once", Daemon: "oneshot", Restart: "on-failure", StopTimeout: DefaultStopTimeout},
		},
		Hooks: map[string]*Hook{
			"install":   {Command: "hooks/install"},
			"configure": {Command: "bin/configure", Plugs: []string{"network"}},
		},
	}
	m.filename, m.lines = "", nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v, want %+v", m, want)
	}
}

// TestParseProbes checks the three kinds of health probe and their defaults.
func TestParseProbes(t *testing.T) {
	tests := []struct {
		body string
		want Health
		kind string
		port int
		path string
	}{
		{"tcp: 8080\n", Health{TCP: 8080, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries}, "tcp", 0, ""},
		{"http: 8080/healthz?full=1\n      retries: 5\n      interval: 2s\n", Health{HTTP: "8080/healthz?full=1", Interval: 2 * time.Second, Timeout: 2 * time.Second, Retries: 5}, "http", 8080, "/healthz?full=1"},
		{"http: '80'\n", Health{HTTP: "80", Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries}, "http", 80, "/"},
		{"command: bin/check --deep\n      timeout: 1s\n", Health{Command: "bin/check --deep", Interval: DefaultHealthInterval, Timeout: time.Second, Retries: DefaultHealthRetries}, "command", 0, ""},
	}
	for _, tt := range tests {
		m, err := Parse([]byte("name: x\nversion: '2'\napps:\n  d:\n    command: d\n    daemon: simple\n    health:\n      "+tt.body), "f")
		if err != nil {
			t.Errorf("%q: %v", tt.body, err)
			continue
		}
		h := m.Apps["d"].Health
		if *h != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.body, *h, tt.want)
		}
		if h.Kind() != tt.kind {
			t.Errorf("%q: got kind %s, want %s", tt.body, h.Kind(), tt.kind)
		}
		if tt.kind == "http" {
			if port, path := h.HTTPTarget(); port != tt.port || path != tt.path {
				t.Errorf("%q: got target %d %s, want %d %s", tt.body, port, path, tt.port, tt.path)
			}
		}
	}
}

func TestParseDefaults(t *testing.T) {
	m, err := Parse([]byte("name: x\nversion: '2'\napps:\n  d:\n    command: d\n    daemon: notify\n    health:\n      command: c\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeApp {
		t.Errorf("got type %q, want app", m.Type)
	}
	h := m.Apps["d"].Health
	if h.Interval != DefaultHealthInterval || h.Timeout != DefaultHealthTimeout {
		t.Errorf("got interval %v timeout %v, want the defaults", h.Interval, h.Timeout)
	}
	if r := m.Apps["d"].Restart; r != "on-failure" {
		t.Errorf("got restart %q, want on-failure", r)
	}
	if d := m.Apps["d"].StopTimeout; d != DefaultStopTimeout {
		t.Errorf("got stop-timeout %v, want %v", d, DefaultStopTimeout)
	}
}

func TestParseAfter(t *testing.T) {
	m, err := Parse([]byte("name: x\nversion: '2'\napps:\n  db:\n    command: db\n    daemon: notify\n  web:\n    command: web\n    daemon: simple\n    after: [db, init]\n    stop-timeout: 3s\n  init:\n    command: i\n    daemon: oneshot\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Apps["web"].After; !reflect.DeepEqual(got, []string{"db", "init"}) {
		t.Errorf("got after %q, want [db init]", got)
	}
	if d := m.Apps["web"].StopTimeout; d != 3*time.Second {
		t.Errorf("got stop-timeout %v, want 3s", d)
	}
}

func TestParseSizes(t *testing.T) {
	tests := map[string]int64{"0": 0, "1024": 1024, "512K": 512 << 10, "64M": 64 << 20, "1G": 1 << 30, "2T": 2 << 40, "8k": 8 << 10}
	for in, want := range tests {
		m, err := Parse([]byte("name: x\nversion: '1'\napps:\n  a:\n    command: a\n    limits:\n      memory: "+in+"\n"), "f")
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := m.Apps["a"].Limits.Memory; got != want {
			t.Errorf("%s: got %d, want %d", in, got, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	const head = "name: hello\nversion: '1.0'\n"
	app := func(body string) string { return head + "apps:\n  a:\n    command: bin/a\n" + body }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "f: manifest is empty"},
		{"not a mapping", "- a\n", "f:1: manifest must be a mapping"},
		{"two documents", head + "---\nname: x\n", "single YAML document"},
		{"syntax", "name: [\n", "f:1: invalid YAML"},
		{"tabs", "name: x\n\tversion: 1\n", "invalid YAML"},
		{"too large", head + "description: " + strings.Repeat("x", MaxSize) + "\n", "more than the limit"},
		{"unknown field", head + "colour: red\n", "f:3: colour: unknown field"},
		{"unknown app field", app("    user: root\n"), "f:6: apps.a.user: unknown field"},
		{"unknown limits field", app("    limits:\n      disk: 1\n"), "apps.a.limits.disk: unknown field"},
		{"unknown health field", app("    daemon: simple\n    health:\n      url: x\n"), "apps.a.health.url: unknown field"},
		{"unknown hook field", head + "hooks:\n  install:\n    user: x\n", "hooks.install.user: unknown field"},
		{"duplicate key", head + "name: again\n", "f:3: name: duplicate key"},
		{"duplicate app", head + "apps:\n  a:\n    command: a\n  a:\n    command: b\n", "f:6: apps.a: duplicate key"},
		{"alias", head + "apps:\n  a: &x\n    command: a\n  b: *x\n", "anchors and aliases"},
		{"merge key", head + "apps:\n  a:\n    <<: {command: a}\n", "apps.a: YAML merge keys"},
		{"non-string key", head + "apps:\n  [a]: {command: a}\n", "keys must be plain strings"},
		{"missing name", "version: '1'\n", "f:1: name: missing"},
		{"null name", "name:\nversion: '1'\n", "name: missing"},
		{"missing version", "name: x\n", "f:1: version: missing"},
		{"name uppercase", "name: Hello\nversion: '1'\n", `f:1: name: invalid package name "Hello"`},
		{"name double dash", "name: a--b\nversion: '1'\n", "invalid package name"},
		{"name leading dash", "name: -a\nversion: '1'\n", "invalid package name"},
		{"name trailing dash", "name: a-\nversion: '1'\n", "invalid package name"},
		{"name too long", "name: " + strings.Repeat("a", 41) + "\nversion: '1'\n", "longer than 40"},
		{"name not a string", "name: [a]\nversion: '1'\n", "name: must be a string"},
		{"name tagged", "name: !!binary aGVsbG8=\nversion: '1'\n", "must be a plain string"},
		{"version space", "name: x\nversion: 1 0\n", `f:2: version: invalid version "1 0"`},
		{"version slash", "name: x\nversion: 1/0\n", "invalid version"},
		{"version non-ascii", "name: x\nversion: 1.0é\n", "invalid version"},
		{"version control", "name: x\nversion: \"1\\x01\"\n", "invalid version"},
		{"version too long", "name: x\nversion: " + strings.Repeat("1", 33) + "\n", "longer than 32"},
		{"unknown type", head + "type: kernel\n", `f:3: type: unknown type "kernel"`},
		{"summary multiline", head + "summary: \"a\\nb\"\n", "summary: must be a single line"},
		{"summary too long", head + "summary: " + strings.Repeat("s", 129) + "\n", "summary: longer than 128"},
		{"apps not a mapping", head + "apps: [a]\n", "f:3: apps: must be a mapping"},
		{"app not a mapping", head + "apps:\n  a: bin/a\n", "apps.a: must be a mapping"},
		{"app name bad", head + "apps:\n  A_b:\n    command: a\n", `apps.A_b: invalid app name "A_b"`},
		{"app name too long", head + "apps:\n  " + strings.Repeat("a", 41) + ":\n    command: a\n", "longer than 40"},
		{"command missing", head + "apps:\n  a:\n    daemon: simple\n", "f:4: apps.a.command: missing"},
		{"command empty", app("")[:len(head)] + "apps:\n  a:\n    command: ''\n", "f:5: apps.a.command: command is empty"},
		{"command blank", head + "apps:\n  a:\n    command: '   '\n", "command is empty"},
		{"command absolute", head + "apps:\n  a:\n    command: /bin/sh\n", `f:5: apps.a.command: path "/bin/sh" is absolute`},
		{"command escapes", head + "apps:\n  a:\n    command: ../x\n", `f:5: apps.a.command: path "../x" escapes the package`},
		{"command escapes after clean", head + "apps:\n  a:\n    command: bin/../../x --flag\n", `path "bin/../../x" escapes`},
		{"command is root", head + "apps:\n  a:\n    command: ./\n", "is not a file"},
		{"command control char", head + "apps:\n  a:\n    command: \"a\\nb\"\n", "control characters"},
		{"command a list", head + "apps:\n  a:\n    command: [a]\n", "must be a string"},
		{"unknown daemon", app("    daemon: forking\n"), `f:6: apps.a.daemon: unknown daemon type "forking"`},
		{"unknown restart", app("    daemon: simple\n    restart: sometimes\n"), `apps.a.restart: unknown restart policy "sometimes"`},
		{"restart without daemon", app("    restart: always\n"), "apps.a.restart: only a daemon"},
		{"health without daemon", app("    health:\n      command: c\n"), "apps.a.health: only a daemon"},
		{"after without daemon", app("    after: [b]\n"), "apps.a.after: only a daemon"},
		{"stop-timeout without daemon", app("    stop-timeout: 5s\n"), "apps.a.stop-timeout: only a daemon"},
		{"after not a list", app("    daemon: simple\n    after: b\n"), "apps.a.after: want a list"},
		{"after bad name", app("    daemon: simple\n    after: [B]\n"), `invalid daemon name "B"`},
		{"after twice", head + "apps:\n  a:\n    command: a\n    daemon: simple\n    after: [b, b]\n  b:\n    command: b\n    daemon: simple\n", `"b" is listed twice`},
		{"after itself", app("    daemon: simple\n    after: [a]\n"), "apps.a.after: a cannot start after itself"},
		{"after unknown", app("    daemon: simple\n    after: [db]\n"), `apps.a.after: "db" is not an app of this package`},
		{"after a command", head + "apps:\n  a:\n    command: a\n    daemon: simple\n    after: [b]\n  b:\n    command: b\n", `apps.a.after: "b" is not a daemon`},
		{"after cycle", head + "apps:\n  a:\n    command: a\n    daemon: simple\n    after: [b]\n  b:\n    command: b\n    daemon: simple\n    after: [c]\n  c:\n    command: c\n    daemon: oneshot\n    after: [a]\n", "apps.a.after: daemons wait for each other in a cycle: a -> b -> c -> a"},
		{"bad stop-timeout", app("    daemon: simple\n    stop-timeout: 10\n"), `apps.a.stop-timeout: invalid duration "10"`},
		{"zero stop-timeout", app("    daemon: simple\n    stop-timeout: 0s\n"), "apps.a.stop-timeout: must be positive"},
		{"long stop-timeout", app("    daemon: simple\n    stop-timeout: 1h\n"), "stop-timeout 1h0m0s is longer than 5m0s"},
		{"plugs not a list", app("    plugs: network\n"), "apps.a.plugs: must be a list"},
		{"plug bad name", app("    plugs: [Network]\n"), `apps.a.plugs: invalid plug name "Network"`},
		{"plug leading digit", app("    plugs: [1wire]\n"), "invalid plug name"},
		{"plug twice", app("    plugs: [a, a]\n"), `plug "a" is listed twice`},
		{"plug nested", app("    plugs: [[a]]\n"), "must be a string"},
		{"limits not a mapping", app("    limits: 5\n"), "apps.a.limits: must be a mapping"},
		{"negative memory", app("    limits:\n      memory: -5\n"), "f:7: apps.a.limits.memory: must not be negative"},
		{"negative memory suffix", app("    limits:\n      memory: -5M\n"), "must not be negative"},
		{"bad memory", app("    limits:\n      memory: 5X\n"), `invalid size "5X"`},
		{"bad memory unit only", app("    limits:\n      memory: M\n"), `invalid size "M"`},
		{"bad memory float", app("    limits:\n      memory: 1.5G\n"), `invalid size "1.5G"`},
		{"memory overflow", app("    limits:\n      memory: 9000000000T\n"), "too large"},
		{"negative cpu", app("    limits:\n      cpu-percent: -1\n"), "apps.a.limits.cpu-percent: must not be negative"},
		{"cpu not int", app("    limits:\n      cpu-percent: 50%\n"), "must be an integer"},
		{"cpu huge", app("    limits:\n      cpu-percent: 99999999\n"), "must be at most"},
		{"negative pids", app("    limits:\n      pids: -3\n"), "apps.a.limits.pids: must not be negative"},
		{"pids float", app("    limits:\n      pids: 1.5\n"), "must be an integer"},
		{"pids overflow", app("    limits:\n      pids: 99999999999999999999\n"), "must be an integer"},
		{"health command missing", app("    daemon: simple\n    health:\n      interval: 1s\n"), "apps.a.health.command: missing"},
		{"health command escapes", app("    daemon: simple\n    health:\n      command: /x\n"), "apps.a.health.command: path \"/x\" is absolute"},
		{"bad interval", app("    daemon: simple\n    health:\n      command: c\n      interval: 10\n"), `f:9: apps.a.health.interval: invalid duration "10"`},
		{"zero timeout", app("    daemon: simple\n    health:\n      command: c\n      timeout: 0s\n"), "apps.a.health.timeout: must be positive"},
		{"negative interval", app("    daemon: simple\n    health:\n      command: c\n      interval: -1s\n"), "must be positive"},
		{"hook command name", head + "apps:\n  hook-install:\n    command: bin/a\n", "apps.hook-install: the name hook-install is kept for the install hook's sandbox"},
		{"two probes", app("    daemon: simple\n    health:\n      command: c\n      tcp: 80\n"), "apps.a.health.tcp: a health check has one of command, http and tcp, not both command and tcp"},
		{"no probe", app("    daemon: simple\n    health:\n      retries: 2\n"), "apps.a.health.command: missing (want one of command"},
		{"tcp port 0", app("    daemon: simple\n    health:\n      tcp: 0\n"), "apps.a.health.tcp: port 0 is not a port"},
		{"tcp port too big", app("    daemon: simple\n    health:\n      tcp: 65536\n"), "apps.a.health.tcp: must be at most 65535"},
		{"tcp port text", app("    daemon: simple\n    health:\n      tcp: http\n"), "apps.a.health.tcp: must be an integer"},
		{"http no port", app("    daemon: simple\n    health:\n      http: /healthz\n"), `apps.a.health.http: invalid http probe "/healthz"`},
		{"http host", app("    daemon: simple\n    health:\n      http: example.com:80/x\n"), "invalid http probe"},
		{"http url", app("    daemon: simple\n    health:\n      http: http://127.0.0.1:80/\n"), "invalid http probe"},
		{"http leading zero", app("    daemon: simple\n    health:\n      http: 080/x\n"), "invalid http probe"},
		{"http space", app("    daemon: simple\n    health:\n      http: 80/a b\n"), "invalid http probe"},
		{"http port 0", app("    daemon: simple\n    health:\n      http: 0/x\n"), "invalid http probe"},
		{"zero retries", app("    daemon: simple\n    health:\n      tcp: 80\n      retries: 0\n"), "apps.a.health.retries: must be at least 1"},
		{"many retries", app("    daemon: simple\n    health:\n      tcp: 80\n      retries: 1000\n"), "apps.a.health.retries: must be at most 100"},
		{"fast interval", app("    daemon: simple\n    health:\n      tcp: 80\n      interval: 100ms\n"), "apps.a.health.interval: 100ms is shorter than 1s"},
		{"unknown hook", head + "hooks:\n  check-healthy:\n", "hooks.check-healthy: unknown hook (known hooks: install, post-refresh, pre-refresh, remove, configure, check-health)"},
		{"timeout over interval", app("    daemon: simple\n    health:\n      command: c\n      interval: 1s\n      timeout: 2s\n"), "longer than the interval"},
		{"hooks not a mapping", head + "hooks: [install]\n", "hooks: must be a mapping"},
		{"unknown hook", head + "hooks:\n  post-install:\n", `f:4: hooks.post-install: unknown hook`},
		{"hook command escapes", head + "hooks:\n  install:\n    command: ../i\n", "hooks.install.command: path \"../i\" escapes"},
		{"hook command empty", head + "hooks:\n  install:\n    command:\n", "hooks.install.command: command is empty"},
		{"hook plug bad", head + "hooks:\n  remove:\n    plugs: [X]\n", "hooks.remove.plugs: invalid plug name"},
		{"hook a string", head + "hooks:\n  install: x\n", "hooks.install: must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in), "f")
			if err == nil {
				t.Fatalf("got %+v, want an error containing %q", m, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one containing %q", err, tt.want)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Errorf("got error of type %T, want *Error", err)
			}
		})
	}
}

// TestParseRoundTrip checks that a manifest written out with its yaml tags
// parses back to the same value, so tools can rewrite manifests.
func TestParseRoundTrip(t *testing.T) {
	m, err := Parse([]byte(full), "f")
	if err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, "f")
	if err != nil {
		t.Fatalf("cannot parse the marshalled manifest:\n%s\n%v", data, err)
	}
	m.lines, back.lines = nil, nil
	if !reflect.DeepEqual(back, m) {
		t.Errorf("got %+v, want %+v", back, m)
	}
}

func TestConfinement(t *testing.T) {
	tests := []struct{ yaml, want, wantErr string }{
		{"name: a\nversion: \"1\"\n", Strict, ""},
		{"name: a\nversion: \"1\"\nconfinement: devmode\n", Devmode, ""},
		{"name: a\nversion: \"1\"\nconfinement: classic\n", Classic, ""},
		{"name: a\nversion: \"1\"\nconfinement: loose\n", "", `meta/app.yaml:3: confinement: unknown confinement "loose" (want strict, devmode, classic)`},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.yaml), "meta/app.yaml")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
			continue
		}
		if err != nil || m.Confinement != tt.want {
			t.Errorf("got %q, %v, want %q", m.Confinement, err, tt.want)
		}
	}
}

func TestUser(t *testing.T) {
	tests := []struct{ yaml, want, wantErr string }{
		{"name: a\nversion: \"1\"\n", "", ""},
		{"name: a\nversion: \"1\"\nuser: root\n", UserRoot, ""},
		{"name: a\nversion: \"1\"\nuser: admin\n", "", `meta/app.yaml:3: user: unknown user "admin" (want root`},
		{"name: a\nversion: \"1\"\nuser: \"\"\n", "", `meta/app.yaml:3: user: unknown user ""`},
		{"name: a\nversion: \"1\"\nuser: [root]\n", "", `meta/app.yaml:3: user:`},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.yaml), "meta/app.yaml")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: got %v, want an error containing %q", tt.yaml, err, tt.wantErr)
			}
			continue
		}
		if err != nil || m.User != tt.want {
			t.Errorf("%q: got %q, %v, want %q", tt.yaml, m.User, err, tt.want)
		}
	}
}
