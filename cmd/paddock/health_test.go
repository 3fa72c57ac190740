package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/testutil"
)

// healthApp is an app with a command health probe (bin/check: healthy
// unless $APP_COMMON/sick exists), a command that speaks for the app
// through 'paddock ctl' (bin/say), and a configure hook that takes a port
// only when it is a number, read with 'paddock ctl config get'. It carries
// the paddock binary, as the base of a device does.
func healthApp(name string, paddock string) map[string]string {
	return map[string]string{
		"meta/app.yaml": `name: ` + name + `
version: "1.0"
apps:
  web:
    command: bin/web
    daemon: simple
    health:
      command: bin/check
      interval: 1s
      timeout: 1s
      retries: 1
  say:
    command: bin/say
hooks:
  configure:
    command: bin/configure
`,
		"bin/paddock":   paddock,
		"bin/web":       "#!/bin/sh\nexec sleep 1000\n",
		"bin/check":     "#!/bin/sh\nif [ -e \"$APP_COMMON/sick\" ]; then echo \"sick: $(cat \"$APP_COMMON/sick\")\"; exit 1; fi\n",
		"bin/say":       "#!/bin/sh\nexec \"$APP/bin/paddock\" ctl \"$@\"\n",
		"bin/configure": "#!/bin/sh\nport=$(\"$APP/bin/paddock\" ctl config get port)\necho \"configure sees $port\"\ncase \"$port\" in port=[0-9]*) exit 0;; esac\necho \"port must be a number\" >&2\nexit 1\n",
	}
}

// appHealth returns what 'paddock info APP --json' says of its health.
func (d *device) appHealth(app string) *apitypes.AppHealth {
	d.t.Helper()
	var info apitypes.AppInfo
	if err := json.Unmarshal([]byte(d.ok("info", app, "--json")), &info); err != nil {
		d.t.Fatal(err)
	}
	return info.Health
}

func (d *device) waitHealth(app, status, source string) *apitypes.AppHealth {
	d.t.Helper()
	var h *apitypes.AppHealth
	testutil.WaitFor(d.t, app+" "+status+" from "+source, 30*time.Second, func() bool {
		h = d.appHealth(app)
		return h != nil && h.Status == status && h.Source == source
	})
	return h
}

// TestHealthCtlConfig runs, under a real agent and in real sandboxes: a
// command health probe; 'paddock ctl health' from inside two apps, each
// speaking only for itself, and refused to root; a configuration set that
// the configure hook takes, and one it refuses with the old value kept.
func TestHealthCtlConfig(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("probed,other,broken")
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	probed := d.packApp("probed", healthApp("probed", string(bin)), 1)
	other := d.packApp("other", healthApp("other", string(bin)), 1)
	broken := d.packApp("broken", map[string]string{
		"meta/app.yaml": "name: broken\nversion: \"1.0\"\napps:\n  broken:\n    command: bin/broken\nhooks:\n  install:\n    command: bin/install\n",
		"bin/broken":    "#!/bin/sh\n",
		"bin/install":   "#!/bin/sh\necho \"checking the license as $(id -u)\"\necho 'no license' >&2\nexit 1\n",
	}, 1)
	d.startDaemon("")
	// A failing install hook, run in the app's sandbox as its user, undoes the install.
	r := d.paddock("install", broken)
	if r.code == 0 || !strings.Contains(r.stderr, "the install hook of broken failed: exit status 1: no license") {
		t.Errorf("install of broken: got %d %q, want the hook's failure", r.code, r.stderr)
	}
	if pathExists(d.path("var/lib/paddock/data/broken/1")) || strings.Contains(d.ok("list"), "broken") {
		t.Errorf("a failed install hook left broken installed")
	}
	d.ok("install", probed)
	d.ok("install", other)

	// The command probe runs in the sandbox, as the app's user.
	start := time.Now()
	d.waitHealth("probed", "okay", "probe")
	t.Logf("command probe okay %v after the install", time.Since(start))
	if s, ok := d.services()["probed.web"]; !ok || s.AppHealth == nil || s.AppHealth.Status != "okay" {
		t.Errorf("paddock services: got %+v, want probed.web with its app's health okay", s)
	}
	start = time.Now()
	d.ok("run", "--probe", "probed.web")
	t.Logf("a command probe (paddock run --probe, sandbox kept) takes %v", time.Since(start))
	testutil.WriteFile(t, d.path("var/lib/paddock/data/probed/common/sick"), "out of disk")
	h := d.waitHealth("probed", "error", "probe")
	if !strings.Contains(h.Message, "sick: out of disk") {
		t.Errorf("got message %q, want the probe's output", h.Message)
	}
	if err := os.Remove(d.path("var/lib/paddock/data/probed/common/sick")); err != nil {
		t.Fatal(err)
	}
	d.waitHealth("probed", "okay", "probe")

	// An app speaks for itself, and only for itself.
	start = time.Now()
	d.ok("run", "other.say", "--", "health", "error", "the disk is full")
	t.Logf("paddock run other.say -- health error: %v", time.Since(start))
	h = d.waitHealth("other", "error", "ctl")
	if h.Message != "the disk is full" {
		t.Errorf("other: got %q, want its own message", h.Message)
	}
	if h := d.appHealth("probed"); h == nil || h.Status != "okay" || h.Source != "probe" {
		t.Errorf("probed: got %+v, want okay from its probe, untouched by other", h)
	}
	r = d.paddock("ctl", "health", "okay")
	if r.code == 0 || !strings.Contains(r.stderr, "root is no app") {
		t.Errorf("paddock ctl as root: got %d %q, want refused", r.code, r.stderr)
	}
	d.ok("run", "other.say", "--", "health", "okay")
	d.waitHealth("other", "okay", "ctl")

	// The configure hook sees the new value and takes it, or refuses it.
	d.ok("config", "set", "probed", "port=8080")
	if got := strings.TrimSpace(d.ok("config", "get", "probed", "port")); got != "port=8080" {
		t.Errorf("config get: got %q, want port=8080", got)
	}
	r = d.paddock("config", "set", "probed", "port=eighty", "name=web")
	if r.code == 0 || !strings.Contains(r.stderr, "the configure hook of probed failed") || !strings.Contains(r.stderr, "port must be a number") {
		t.Errorf("config set port=eighty: got %d %q, want the hook's refusal", r.code, r.stderr)
	}
	if got := strings.TrimSpace(d.ok("config", "get", "probed")); got != "port=8080" {
		t.Errorf("after a refused set: got %q, want the old port=8080 alone", got)
	}
	if got := strings.TrimSpace(d.ok("run", "probed.say", "--", "config", "get")); got != "port=8080" {
		t.Errorf("paddock ctl config get in the app: got %q, want port=8080", got)
	}
	if got := strings.TrimSpace(d.ok("run", "other.say", "--", "config", "get")); got != "" {
		t.Errorf("paddock ctl config get in other: got %q, want nothing of probed's", got)
	}
}
