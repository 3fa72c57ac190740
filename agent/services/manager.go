package services

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// Errors that callers map to answers.
var (
	// ErrNoService means that no installed app has the service asked for.
	ErrNoService = errors.New("no such service")
	// ErrInvalid means that a name asked for is not one an app or a
	// service can have.
	ErrInvalid = errors.New("invalid name")
)

// Manager supervises the services of the installed apps.
type Manager struct {
	st        *state.State
	runner    *state.Runner
	log       *slog.Logger
	wake      func()
	conflicts *manager.Conflicts

	// Exe is the paddock binary whose 'paddock run' launches services:
	// the agent's own.
	Exe string
	// Logs bounds the services' logs.
	LogLimits LogLimits
	// Backoff paces restarts.
	Backoff Backoff

	mu sync.Mutex
	// svcs are the known services, by APP.SVC.
	svcs map[string]*service
	// started is set once StartUp ran: Ensure starts nothing before.
	started bool
	// synced is the revision of each app whose services Ensure last
	// brought in line, so that an idle Ensure reads no manifest.
	synced map[string]int
}

var (
	_ manager.Manager    = (*Manager)(nil)
	_ manager.StartUpper = (*Manager)(nil)
	_ manager.Stopper    = (*Manager)(nil)
	_ manager.Reporter   = (*Manager)(nil)
)

// New returns the service manager of env and registers the task handlers
// of 'paddock start|stop|restart' with env's runner.
func New(env manager.Env) *Manager {
	// The agent's own binary, even when its file is gone (an agent started
	// from the initramfs, after switch_root).
	exe := "/proc/self/exe"
	m := &Manager{
		st: env.State, runner: env.Runner, log: env.Log, wake: env.Wake, conflicts: env.Conflicts,
		Exe: exe, LogLimits: DefaultLogLimits, Backoff: DefaultBackoff, svcs: map[string]*service{}, synced: map[string]int{},
	}
	if m.wake == nil {
		m.wake = func() {}
	}
	if m.conflicts == nil {
		m.conflicts = manager.NewConflicts(m.st)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.addHandlers()
	return m
}

// StartUp re-adopts the services that still run from before the agent
// (re)started, then starts the enabled services of every app without a
// change in progress, in after: order.
func (m *Manager) StartUp() error {
	if err := os.MkdirAll(runDir(), 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", runDir(), err)
	}
	m.readopt()
	m.mu.Lock()
	m.started = true
	m.mu.Unlock()
	return m.Ensure()
}

// Ensure brings the services in line with the apps' current revisions:
// it stops the services of revisions that are no longer current and
// starts those of a newly current one. It leaves alone the services of an
// app that a change works on (the change starts and stops them).
func (m *Manager) Ensure() error {
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if !started {
		return nil
	}
	current := currentRevisions()
	var errs []error
	for _, app := range m.knownApps(current) {
		if m.inLine(app, current[app]) || m.busy(app) {
			continue
		}
		if err := m.syncApp(app, current[app], false); err != nil {
			errs = append(errs, err)
			continue
		}
		m.mu.Lock()
		m.synced[app] = current[app]
		if current[app] == 0 {
			delete(m.synced, app)
		}
		m.mu.Unlock()
		if current[app] == 0 {
			forget(app)
		}
	}
	return errors.Join(errs...)
}

// Stop leaves the services running: a restarted or upgraded agent
// re-adopts them. It only lets the log readers go.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.svcs {
		s.closeLog()
	}
}

// Report returns the services, the service manager's part of the state
// reported to the fleet.
func (m *Manager) Report() any { return m.Status("") }

// StartApp starts the enabled services of the current revision of app, in
// after: order, and returns once those that wait for none are launched
// (the others follow as what they wait for starts). Services that run
// already are left alone. A change that manages services (a refresh)
// calls it after it made a revision current.
func (m *Manager) StartApp(app string) error {
	if err := manifest.CheckName("app", app); err != nil {
		return err
	}
	rev, err := currentRevision(app)
	if err != nil {
		return err
	}
	return m.syncApp(app, rev, true)
}

// StopApp stops every service of app, of whatever revision, and waits
// until they ended (SIGTERM, then SIGKILL after each one's stop-timeout).
// They stay stopped until StartApp, or until Ensure sees another revision
// current; unlike 'paddock stop', this is not recorded across restarts of
// the agent. A change that manages services (a refresh) calls it before
// it switches revisions.
func (m *Manager) StopApp(app string) error {
	if err := manifest.CheckName("app", app); err != nil {
		return err
	}
	m.mu.Lock()
	var svcs []*service
	for _, s := range m.svcs {
		if s.app == app {
			svcs = append(svcs, s)
		}
	}
	m.mu.Unlock()
	return m.stopAll(svcs)
}

// stopAll stops svcs at once and waits for all of them.
func (m *Manager) stopAll(svcs []*service) error {
	errs := make([]error, len(svcs))
	var wg sync.WaitGroup
	for i, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Status returns the services of app, or of every app when app is "",
// sorted by app and service.
func (m *Manager) Status(app string) []apitypes.ServiceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []apitypes.ServiceInfo{}
	for _, s := range m.svcs {
		if app == "" || s.app == app {
			out = append(out, s.infoLocked())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Service < out[j].Service
	})
	return out
}

// inLine reports whether the services of app are those of revision rev
// already, none of them held.
func (m *Manager) inLine(app string, rev int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	synced, ok := m.synced[app]
	if !ok || synced != rev {
		return false
	}
	for _, s := range m.svcs {
		if s.app == app && (s.held || s.rev != rev) {
			return false
		}
	}
	return true
}

// busy reports whether a change in progress works on app.
func (m *Manager) busy(app string) bool {
	m.st.Lock()
	defer m.st.Unlock()
	return m.conflicts.Check(manager.AppKey(app)) != nil
}

// knownApps returns the apps that have a current revision or known services.
func (m *Manager) knownApps(current map[string]int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var apps []string
	for a := range current {
		apps = append(apps, a)
	}
	for _, s := range m.svcs {
		if !slices.Contains(apps, s.app) {
			apps = append(apps, s.app)
		}
	}
	sort.Strings(apps)
	return apps
}

// syncApp makes the services of app those of revision rev (0: none):
// services of other revisions, or gone from rev, are stopped and
// forgotten; new ones are created and, when enabled, started. With
// restart, services of rev that are not running start again too.
func (m *Manager) syncApp(app string, rev int, start bool) error {
	var defs map[string]*manifest.App
	if rev > 0 {
		mf, err := revisions.LoadManifest(app, rev)
		if err != nil {
			return fmt.Errorf("cannot start the services of %s: %w", app, err)
		}
		defs = daemons(mf)
	}
	m.mu.Lock()
	var old []*service
	for key, s := range m.svcs {
		if s.app == app && (s.rev != rev || defs[s.name] == nil) {
			old = append(old, s)
			delete(m.svcs, key)
		}
	}
	m.mu.Unlock()
	if err := m.stopAll(old); err != nil {
		m.log.Warn("stopping services", "app", app, "err", err)
	}
	for _, s := range old {
		s.closeLog()
	}
	disabled := m.disabled()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, def := range defs {
		key := app + "." + name
		s := m.svcs[key]
		if s == nil {
			s = newService(m, app, name, rev, def)
			s.enabled = !disabled[key]
			m.svcs[key] = s
			s.pending = s.enabled
		} else if (start || s.held) && s.enabled && !s.activeLocked() {
			s.pending, s.held = true, false
		}
	}
	return m.startPendingLocked(app)
}

// startPendingLocked launches the pending services of app whose after:
// services have started; m.mu is held.
func (m *Manager) startPendingLocked(app string) error {
	var errs []error
	for _, s := range m.appServicesLocked(app) {
		if !s.pending {
			continue
		}
		if wait := m.waitingForLocked(s); wait != "" {
			s.message = "waits for " + wait
			continue
		}
		s.pending = false
		if err := s.launchLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitingForLocked names a service that s is after and that has not
// started, or returns "".
func (m *Manager) waitingForLocked(s *service) string {
	for _, dep := range s.def.After {
		d := m.svcs[s.app+"."+dep]
		if d == nil || !d.startedLocked() {
			return s.app + "." + dep
		}
	}
	return ""
}

// appServicesLocked returns the services of app, sorted by name.
func (m *Manager) appServicesLocked(app string) []*service {
	var out []*service
	for _, s := range m.svcs {
		if s.app == app {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// daemons returns the commands of mf that are daemons.
func daemons(mf *manifest.Manifest) map[string]*manifest.App {
	out := map[string]*manifest.App{}
	for name, a := range mf.Apps {
		if a.Daemon != "" {
			out[name] = a
		}
	}
	return out
}

// forget removes what is left of the services of app, which is gone:
// its logs and log pipes.
func forget(app string) {
	os.RemoveAll(filepath.Join(LogsDir(), app))
	pipes, _ := filepath.Glob(filepath.Join(runDir(), app+".*.log"))
	for _, p := range pipes {
		os.Remove(p)
	}
}

// currentRevisions returns the current revision of every app whose
// current link is set, from the apps directory.
func currentRevisions() map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir(dirs.AppsDir)
	for _, e := range entries {
		if rev, err := currentRevision(e.Name()); err == nil {
			out[e.Name()] = rev
		}
	}
	return out
}

// currentRevision returns the revision that app's current link names.
func currentRevision(app string) (int, error) {
	target, err := os.Readlink(dirs.AppDir(app, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, notFound{fmt.Errorf("%s is not installed (see 'paddock list')", app)}
	}
	if err != nil {
		return 0, err
	}
	rev, err := strconv.Atoi(target)
	if err != nil || rev <= 0 {
		return 0, fmt.Errorf("current revision of %s is %q, not a number", app, target)
	}
	return rev, nil
}

// splitTarget splits APP[.SVC].
func splitTarget(target string) (app, svc string, err error) {
	app, svc, hasSvc := strings.Cut(target, ".")
	if err := manifest.CheckName("app", app); err != nil {
		return "", "", invalid{err}
	}
	if hasSvc {
		if err := manifest.CheckName("service", svc); err != nil {
			return "", "", invalid{err}
		}
	}
	return app, svc, nil
}

var timeNow = time.Now

// invalid wraps an error that means ErrInvalid, keeping its message.
type invalid struct{ err error }

func (e invalid) Error() string        { return e.err.Error() }
func (e invalid) Unwrap() error        { return e.err }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

// notFound wraps an error that means ErrNoService, keeping its message.
type notFound struct{ err error }

func (e notFound) Error() string        { return e.err.Error() }
func (e notFound) Unwrap() error        { return e.err }
func (e notFound) Is(target error) bool { return target == ErrNoService }
