package health

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// Apps is what the health manager asks of the app manager: the installed
// apps and their current revisions.
type Apps interface {
	List() []apitypes.AppInfo
}

// Services is what the health manager asks of the service manager
// (agent/services): the state of an app's services, crash loops included.
type Services interface {
	Status(app string) []apitypes.ServiceInfo
}

// loadManifest reads the manifest the agent kept of a revision; tests swap it.
var loadManifest = revisions.LoadManifest

var timeNow = time.Now

// Manager keeps the health of each app. Its methods are safe for
// concurrent use.
type Manager struct {
	log  *slog.Logger
	apps Apps
	wake func()

	mu sync.Mutex
	// of holds each app's health records, by app name.
	of map[string]*appHealth
	// changed is closed, and replaced, whenever a record changes: Wait
	// sleeps on it.
	changed chan struct{}
	// runner starts probes; tests replace it.
	runner probeRunner
	// stopped is set by Stop: no probe starts after it.
	stopped bool

	// Services, when set before the agent's loop starts, tells of the
	// services in a crash loop, which make their app unhealthy.
	Services Services
}

// appHealth is what the manager knows of one app.
type appHealth struct {
	rev int
	// records are the last words of each source, by key: "probe CMD",
	// "hook", "ctl", "crash-loop".
	records map[string]record
	// declared means a probe or the check-health hook judges the app;
	// usesCtl that the app spoke through the ctl socket since the agent
	// started.
	declared, usesCtl bool
	// gen counts Resets: a probe's word from an older generation is dropped.
	gen int
	// probes are the running probes of the current revision.
	probes []*probe
}

// record is one source's last word about an app.
type record struct {
	Health
	// at is when it was last said (Since is when it last changed).
	at time.Time
}

var (
	_ manager.Manager  = (*Manager)(nil)
	_ manager.Stopper  = (*Manager)(nil)
	_ manager.Reporter = (*Manager)(nil)
)

// New returns the health manager of env, which learns the installed apps
// from apps.
func New(env manager.Env, apps Apps) *Manager {
	m := &Manager{log: env.Log, apps: apps, wake: env.Wake, of: map[string]*appHealth{}, changed: make(chan struct{})}
	if m.wake == nil {
		m.wake = func() {}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.runner = realRunner{}
	return m
}

// Ensure follows the installed apps: it starts the probes of an app's
// current revision when the revision changes, and stops those of apps
// that are gone. It reads a manifest only when a revision changes.
func (m *Manager) Ensure() error {
	current := map[string]int{}
	for _, a := range m.apps.List() {
		if a.Revision > 0 {
			current[a.Name] = a.Revision
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, ah := range m.of {
		if _, ok := current[name]; !ok {
			ah.stopProbes()
			delete(m.of, name)
			m.notifyLocked()
		}
	}
	for name, rev := range current {
		if ah := m.of[name]; ah == nil || ah.rev != rev {
			m.resetLocked(name, rev)
		}
	}
	m.crashLoopsLocked(current)
	return nil
}

// crashLoopsLocked records the services of the current apps in a crash
// loop as their app's errors, and forgets those that left it; m.mu is
// held. It runs in the agent's loop, which runs anyway: no timer of its own.
func (m *Manager) crashLoopsLocked(current map[string]int) {
	if m.Services == nil {
		return
	}
	for name := range current {
		looping := map[string]bool{}
		for _, s := range m.Services.Status(name) {
			if !s.CrashLoop {
				continue
			}
			looping[s.Service] = true
			msg := fmt.Sprintf("service %s.%s is in a crash loop (%d restarts)", name, s.Service, s.Restarts)
			if s.Message != "" {
				msg += ": " + s.Message
			}
			m.setLocked(name, -1, SourceCrashLoop, s.Service, Error, msg)
		}
		ah := m.of[name]
		for k := range ah.records {
			svc, ok := strings.CutPrefix(k, string(SourceCrashLoop)+" ")
			if ok && !looping[svc] {
				delete(ah.records, k)
				m.wake()
				m.notifyLocked()
			}
		}
	}
}

// Stop stops every probe.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	for _, ah := range m.of {
		ah.stopProbes()
	}
}

// Report returns the health of every app that has one, by name: the
// health manager's part of the state reported to the fleet.
func (m *Manager) Report() any { return m.All() }

// Health returns the health of app: the worst of its sources' last
// words, or unknown.
func (m *Manager) Health(app string) Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.healthLocked(app)
}

// All returns the health of every app that has a known health, by name.
func (m *Manager) All() map[string]Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Health{}
	for name, ah := range m.of {
		if len(ah.records) > 0 {
			out[name] = m.healthLocked(name)
		}
	}
	return out
}

func (m *Manager) healthLocked(app string) Health {
	ah := m.of[app]
	if ah == nil || len(ah.records) == 0 {
		return Health{Status: Unknown}
	}
	keys := make([]string, 0, len(ah.records))
	for k := range ah.records {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first of equals is stable
	hs := make([]Health, 0, len(keys))
	for _, k := range keys {
		hs = append(hs, ah.records[k].Health)
	}
	return Worst(hs...)
}

// Set records what source says of app's health, with a one-line message;
// key tells apart several words of one source (the probes of two
// commands), and may be empty. It is how the ctl socket, the hooks and
// the services' crash-loop watch report. A status that did not change
// keeps its Since.
func (m *Manager) Set(app string, src Source, key string, status Status, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(app, -1, src, key, status, message)
}

// setLocked records a word of generation gen (-1: any); m.mu is held.
func (m *Manager) setLocked(app string, gen int, src Source, key string, status Status, message string) {
	ah := m.of[app]
	if ah == nil {
		ah = &appHealth{records: map[string]record{}}
		m.of[app] = ah
	}
	if gen >= 0 && gen != ah.gen {
		return // a probe of a revision or start that is gone
	}
	if src == SourceCtl {
		ah.usesCtl = true
	}
	k := string(src)
	if key != "" {
		k += " " + key
	}
	now := timeNow()
	message = oneLine(message, maxMessage)
	old, had := ah.records[k]
	r := record{Health: Health{Status: status, Message: message, Source: src, Since: now}, at: now}
	if had && old.Status == status && old.Message == message {
		r.Since = old.Since
	}
	ah.records[k] = r
	if !had || r.Since != old.Since {
		m.wake() // the fleet's state changed
	}
	m.notifyLocked()
}

// Clear forgets what source said of app (a crash loop that ended).
func (m *Manager) Clear(app string, src Source, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ah := m.of[app]
	if ah == nil {
		return
	}
	k := string(src)
	if key != "" {
		k += " " + key
	}
	if _, ok := ah.records[k]; ok {
		delete(ah.records, k)
		m.wake()
		m.notifyLocked()
	}
}

// notifyLocked wakes every Wait; m.mu is held.
func (m *Manager) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Reset starts judging app afresh at revision rev: it forgets what every
// source said (a probe in flight for the old start is ignored), reads the
// revision's manifest and runs its probes at once, then at their
// interval. A refresh calls it once the new revision's services started,
// before Wait.
func (m *Manager) Reset(app string, rev int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked(app, rev)
}

func (m *Manager) resetLocked(app string, rev int) {
	ah := m.of[app]
	if ah == nil {
		ah = &appHealth{}
		m.of[app] = ah
	}
	ah.stopProbes()
	ah.gen++
	ah.rev = rev
	ah.records = map[string]record{}
	ah.declared = false
	m.notifyLocked()
	m.wake()
	if m.stopped {
		return
	}
	mf, err := loadManifest(app, rev)
	if err != nil {
		m.log.Warn("health: cannot read the manifest", "app", app, "revision", rev, "err", err)
		return
	}
	specs := probesOf(mf)
	ah.declared = len(specs) > 0
	for _, spec := range specs {
		p := newProbe(m, app, rev, ah.gen, spec)
		ah.probes = append(ah.probes, p)
		go p.run()
	}
}

// errNoHealth is the message of the health Wait returns at once for an
// app that nothing judges: its caller decides.
const errNoHealth = "no health check declared"

// Wait waits until the health of app is okay or error, or ctx ends, and
// returns it. For an app that nothing judges (no probe, no check-health
// hook, no word through the ctl socket since the agent started) it
// returns at once its health, unknown with the message "no health check
// declared" unless a crash loop spoke. When ctx ends first it returns the
// last health (unknown or waiting) and ctx's error. Call Reset first, so
// that a word about the previous start does not count.
func (m *Manager) Wait(ctx context.Context, app string) (Health, error) {
	for {
		m.mu.Lock()
		h := m.healthLocked(app)
		ah := m.of[app]
		judged := ah != nil && (ah.declared || ah.usesCtl)
		ch := m.changed
		m.mu.Unlock()
		if h.Status == Okay || h.Status == Error {
			return h, nil
		}
		if !judged {
			if h.Status == Unknown {
				h.Message = errNoHealth
			}
			return h, nil
		}
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-ch:
		}
	}
}

// Declared reports whether something judges app's health: a probe or
// the check-health hook of its current revision, or the app itself
// through the ctl socket.
func (m *Manager) Declared(app string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ah := m.of[app]
	return ah != nil && (ah.declared || ah.usesCtl)
}

// probesOf lists the probes m declares: one per command with a health
// check, and the check-health hook.
func probesOf(m *manifest.Manifest) []probeSpec {
	var out []probeSpec
	cmds := make([]string, 0, len(m.Apps))
	for name := range m.Apps {
		cmds = append(cmds, name)
	}
	sort.Strings(cmds)
	for _, cmd := range cmds {
		if h := m.Apps[cmd].Health; h != nil {
			out = append(out, probeSpec{Command: cmd, Check: *h})
		}
	}
	if _, ok := m.Hooks[HookName]; ok {
		out = append(out, probeSpec{Hook: true, Check: manifest.Health{Interval: manifest.DefaultHealthInterval, Timeout: manifest.DefaultHealthTimeout}})
	}
	return out
}

// HookName is the hook that judges an app's health.
const HookName = "check-health"

// AppHealth returns the health of app as the API reports it, or nil when
// nothing judges it.
func (m *Manager) AppHealth(app string) *apitypes.AppHealth {
	m.mu.Lock()
	defer m.mu.Unlock()
	ah := m.of[app]
	if ah == nil || (!ah.declared && len(ah.records) == 0) {
		return nil
	}
	h := m.healthLocked(app)
	return &apitypes.AppHealth{Status: string(h.Status), Message: h.Message, Source: string(h.Source), Since: h.Since}
}
