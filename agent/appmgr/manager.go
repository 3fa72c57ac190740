package appmgr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
	"paddock.dev/paddock/ota/trust"
)

// Errors that callers map to answers.
var (
	// ErrNotInstalled means the named app is not installed.
	ErrNotInstalled = errors.New("not installed")
	// ErrInProgress means another change of the same app has not finished.
	ErrInProgress = manager.ErrInProgress
	// ErrRefused marks a request refused for what it asked or carried:
	// a bad signature, a wrong digest, an older revision.
	ErrRefused = errors.New("refused")
)

// refused wraps err so that errors.Is(err, ErrRefused) holds, without
// changing its message.
type refusedError struct{ err error }

func (e refusedError) Error() string        { return e.err.Error() }
func (e refusedError) Unwrap() error        { return e.err }
func (e refusedError) Is(target error) bool { return target == ErrRefused }

func refused(format string, args ...any) error {
	return refusedError{fmt.Errorf(format, args...)}
}

// checkName refuses a name that no app can have, such as "../x", before
// it names a path or a state entry.
func checkName(name string) error {
	if err := manifest.CheckName("app", name); err != nil {
		return refusedError{err}
	}
	return nil
}

// DefaultKeep is how many revisions of an app are kept, the current one included.
const DefaultKeep = 2

// appsKey is where the apps are kept in the state.
const appsKey = "apps"

// Manager manages installed apps.
type Manager struct {
	st     *state.State
	runner *state.Runner
	log    *slog.Logger
	// Keep is how many revisions of each app are kept; at least 2 so that revert works.
	Keep int
	// Arch is the device architecture, in Debian's names.
	Arch string
	// downloads is how far the downloads in progress are.
	downloads downloads

	wake      func()
	conflicts *manager.Conflicts
	// be does what the changes do to the system.
	be Backend
	// Hooks runs the package's hooks, for at most HookTimeout each (hooks.go).
	Hooks       HookRunner
	HookTimeout time.Duration
	// Services and Health gate a refresh (gate.go); nil: no services to
	// stop or start, no health to wait for.
	Services Services
	Health   Health
	// connections, when set, gives the connections policies are resolved
	// with (SetConnections).
	connections ConnectionsFunc
	// recorder, when set, records the connections as changes make them
	// (SetRecorder).
	recorder Recorder
}

var (
	_ manager.Manager    = (*Manager)(nil)
	_ manager.StartUpper = (*Manager)(nil)
	_ manager.Stopper    = (*Manager)(nil)
	_ manager.Reporter   = (*Manager)(nil)
)

// New returns the app manager of env and registers its task handlers
// with env's runner.
func New(env manager.Env) *Manager {
	m := &Manager{
		st: env.State, runner: env.Runner, log: env.Log, Keep: DefaultKeep, Arch: arch.Native(),
		wake: env.Wake, conflicts: env.Conflicts, be: realBackend{},
		Hooks: launchHooks{}, HookTimeout: DefaultHookTimeout,
	}
	if m.wake == nil {
		m.wake = func() {}
	}
	if m.conflicts == nil { // a lone manager
		m.conflicts = manager.NewConflicts(m.st)
	}
	m.addHandlers()
	return m
}

// Ensure does nothing yet: the work of the app manager is in the handlers
// of its changes, which the task runner calls.
func (m *Manager) Ensure() error { return nil }

// Report returns the installed apps, the app manager's part of the state
// reported to the fleet.
func (m *Manager) Report() any { return m.List() }

var timeNow = time.Now

// apps returns the recorded apps; the state must be locked.
func (m *Manager) apps() map[string]*App {
	apps := map[string]*App{}
	if err := m.st.Get(appsKey, &apps); err != nil && !errors.Is(err, state.ErrNoState) {
		// The state file was checked when it was opened; this is a bug.
		panic(fmt.Sprintf("internal error: cannot read apps from state: %v", err))
	}
	return apps
}

// setApp records app, or forgets the app called name when app is nil; the state must be locked.
func (m *Manager) setApp(name string, app *App) {
	apps := m.apps()
	if app == nil {
		delete(apps, name)
	} else {
		apps[name] = app
	}
	m.st.Set(appsKey, apps)
}

// List returns the installed apps, sorted by name.
func (m *Manager) List() []apitypes.AppInfo {
	m.st.Lock()
	defer m.st.Unlock()
	out := []apitypes.AppInfo{}
	for _, a := range m.apps() {
		out = append(out, a.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Info returns the app called name.
func (m *Manager) Info(name string) (apitypes.AppInfo, error) {
	if err := checkName(name); err != nil {
		return apitypes.AppInfo{}, err
	}
	m.st.Lock()
	defer m.st.Unlock()
	a := m.apps()[name]
	if a == nil {
		return apitypes.AppInfo{}, fmt.Errorf("%s is %w (see 'paddock list')", name, ErrNotInstalled)
	}
	return a.info(), nil
}

// InstallOptions tune Install.
type InstallOptions struct {
	// Refresh refuses apps that are not installed yet.
	Refresh bool
	// Command is the id of the fleet command that asks for the change,
	// which the change records (CommandKey).
	Command string
}

// Install checks the assertion bundle against the trusted keys, streams the
// package from pkg into the store while verifying its size and digest, and
// starts the change that installs or refreshes the app. It returns the
// change id. A refused request changes nothing.
func (m *Manager) Install(bundle []byte, pkg io.Reader, opts InstallOptions) (string, error) {
	in, err := m.beginInstall(bundle, opts)
	if err != nil {
		return "", err
	}
	defer in.release()
	if !in.kept {
		if _, err := revisions.StorePackage(pkg, in.name, in.rev.Revision, in.rev.Size, in.rev.SHA256); err != nil {
			if errors.Is(err, revisions.ErrSizeMismatch) || errors.Is(err, revisions.ErrDigestMismatch) {
				return "", refused("cannot install %s: %w (the package was changed or truncated after signing)", in.name, err)
			}
			return "", fmt.Errorf("cannot install %s: %w", in.name, err)
		}
	}
	return m.startInstall(in, bundle, opts, nil), nil
}

// pendingInstall is an install checked and claimed, before its change.
type pendingInstall struct {
	name    string
	rev     Revision
	before  *App
	kept    bool // the revision is kept on the device already (after a revert)
	release func()
}

// beginInstall checks the bundle and whether its revision may replace what
// is installed, and claims the app; the caller calls release.
func (m *Manager) beginInstall(bundle []byte, opts InstallOptions) (*pendingInstall, error) {
	name, rev, err := m.checkRevision(bundle)
	if err != nil {
		return nil, err
	}
	release, err := m.claim(name)
	if err != nil {
		return nil, err
	}
	m.st.Lock()
	before := m.apps()[name]
	m.st.Unlock()
	kept, err := m.checkUpdate(name, before, rev, opts)
	if err != nil {
		release()
		return nil, err
	}
	return &pendingInstall{name: name, rev: rev, before: before, kept: kept, release: release}, nil
}

// startInstall makes the change of a pending install, downloading from
// src when it is not nil, and returns its id.
func (m *Manager) startInstall(in *pendingInstall, bundle []byte, opts InstallOptions, src *Source) string {
	m.st.Lock()
	defer m.st.Unlock()
	chg := m.installChange(in.name, in.before, in.rev, bundle, in.kept, src)
	setCommand(chg, opts.Command)
	m.wake()
	return chg.ID()
}

// checkRevision verifies the bundle and returns the revision it describes.
func (m *Manager) checkRevision(bundle []byte) (string, Revision, error) {
	trusted, err := keys.LoadTrusted()
	if err != nil {
		return "", Revision{}, fmt.Errorf("cannot load trusted keys: %w", err)
	}
	if len(trusted) == 0 {
		return "", Revision{}, refused("cannot install: no trusted keys in %s (add a root key with 'paddock key trust')", dirs.TrustedDir)
	}
	r, err := trust.CheckRevision(bundle, trusted, timeNow(), "")
	if err != nil {
		return "", Revision{}, refused("cannot install: %w", err)
	}
	m.st.Lock()
	installed := m.apps()[r.Name]
	m.st.Unlock()
	if installed != nil {
		if r, err = checkOwner(bundle, trusted, installed, r); err != nil {
			return "", Revision{}, err
		}
	}
	return r.Name, Revision{
		Revision: r.Revision, Version: r.Version, Type: r.Type, Arch: r.Arch,
		Size: r.Size, SHA256: r.SHA256, Publisher: r.Publisher, SignKey: r.SignKey,
		Installed: timeNow().UTC().Truncate(time.Second), Grants: r.Grants,
	}, nil
}

// checkUpdate refuses revisions that may not replace what is installed, and
// reports whether rev is already kept on the device (after a revert).
func (m *Manager) checkUpdate(name string, before *App, rev Revision, opts InstallOptions) (kept bool, err error) {
	if err := m.checkType(name, rev.Type); err != nil {
		return false, err
	}
	if rev.Arch != "all" && rev.Arch != m.Arch {
		return false, refused("cannot install %s: built for %s, this device is %s", name, rev.Arch, m.Arch)
	}
	if before != nil && before.removing() {
		return false, unfinishedRemove("install", name)
	}
	if before == nil {
		if opts.Refresh {
			return false, fmt.Errorf("cannot refresh %s: it is %w (use 'paddock install')", name, ErrNotInstalled)
		}
		return false, nil
	}
	switch {
	case rev.Revision == before.Current:
		return false, refused("cannot install %s: revision %d is already installed", name, rev.Revision)
	case rev.Revision < before.Current:
		return false, refused("cannot install %s: revision %d is older than the installed revision %d (use 'paddock revert %s' to go back)", name, rev.Revision, before.Current, name)
	}
	if k := before.Revision(rev.Revision); k != nil {
		if k.SHA256 != rev.SHA256 || k.Size != rev.Size {
			return false, refused("cannot install %s: revision %d is kept on the device with other content (sha256 %s)", name, rev.Revision, k.SHA256)
		}
		return true, nil
	}
	return false, nil
}

// unfinishedRemove is the error of a change asked of an app whose remove
// failed part-way.
func unfinishedRemove(verb, name string) error {
	return fmt.Errorf("cannot %s %s: a remove of it did not finish (run 'paddock remove %s' to finish it)", verb, name, name)
}

// claim reserves the app called name for a change about to be made, or
// says which change or upload holds it. The caller releases it once the
// change exists, or will not be made.
func (m *Manager) claim(name string) (release func(), err error) {
	release, err = m.conflicts.Reserve("another upload of it", manager.AppKey(name))
	if err != nil {
		return nil, fmt.Errorf("cannot change %s: %w", name, err)
	}
	return release, nil
}

// changeOf returns the unfinished change of the app called name; the state must be locked.
func (m *Manager) changeOf(name string) *state.Change {
	var c *manager.ConflictError
	if errors.As(m.conflicts.Check(manager.AppKey(name)), &c) {
		return c.Change
	}
	return nil
}

// Revert switches the app called name back to its previous revision and that revision's data.
func (m *Manager) Revert(name string) (string, error) { return m.revert(name, "") }

func (m *Manager) revert(name, command string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	release, err := m.claim(name)
	if err != nil {
		return "", err
	}
	defer release()
	m.st.Lock()
	defer m.st.Unlock()
	app := m.apps()[name]
	if app == nil {
		return "", fmt.Errorf("cannot revert %s: it is %w", name, ErrNotInstalled)
	}
	if app.removing() {
		return "", unfinishedRemove("revert", name)
	}
	prev := app.Previous()
	if prev == nil {
		return "", refused("cannot revert %s: no revision older than %d is kept", name, app.Current)
	}
	if err := checkRevert(app, prev); err != nil {
		return "", err
	}
	chg := m.st.NewChange("revert", fmt.Sprintf("Revert %q to revision %d", name, prev.Revision))
	setCommand(chg, command)
	setupChange(chg, name, app, *prev, nil)
	link := m.st.NewTask("link-revision", fmt.Sprintf("Make revision %d of %q current", prev.Revision, name))
	record := m.recordTask(name) // connections.go
	record.WaitFor(link)
	chg.AddTask(link)
	chg.AddTask(record)
	m.wake()
	return chg.ID(), nil
}

// Remove removes the app called name with all its revisions and data.
func (m *Manager) Remove(name string) (string, error) { return m.remove(name, "") }

func (m *Manager) remove(name, command string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	release, err := m.claim(name)
	if err != nil {
		return "", err
	}
	defer release()
	m.st.Lock()
	defer m.st.Unlock()
	app := m.apps()[name]
	if app == nil {
		return "", fmt.Errorf("cannot remove %s: it is %w", name, ErrNotInstalled)
	}
	if err := checkRemovable(app); err != nil {
		return "", err
	}
	chg := m.st.NewChange("remove", fmt.Sprintf("Remove %q", name))
	setCommand(chg, command)
	var rev Revision // none current when a remove failed part-way
	if r := app.CurrentRevision(); r != nil {
		rev = *r
	}
	setupChange(chg, name, app, rev, nil)
	unlink := m.st.NewTask("unlink-app", fmt.Sprintf("Make %q inactive", name))
	discard := m.st.NewTask("discard-app", fmt.Sprintf("Remove the revisions and data of %q", name))
	discard.WaitFor(unlink)
	forget := m.st.NewTask("forget-connections", fmt.Sprintf("Forget the connections of %q", name))
	forget.WaitFor(discard)
	hooks := m.removeHooks(name, app) // hooks.go
	chainBefore(hooks, unlink)
	for _, h := range hooks {
		chg.AddTask(h)
	}
	chg.AddTask(unlink)
	chg.AddTask(discard)
	chg.AddTask(forget)
	m.wake()
	return chg.ID(), nil
}

// Startup brings the disk in line with the state after a boot or a crash:
// it mounts every kept revision and makes the current one of each app
// runnable again (mounted, AppArmor profiles loaded, current links), even
// while a change of the app is in progress: a power cut takes all of that,
// and the change's resumed tasks go on from the state, not from what the
// cut left. Then it drops package blobs that nothing refers to.
// Interrupted changes are resumed by the task runner afterwards.
func (m *Manager) StartUp() error {
	for _, dir := range []string{dirs.PackagesDir, dirs.AssertionsDir, dirs.AppsDir, dirs.DataDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", dir, err)
		}
	}
	m.st.Lock()
	defer m.st.Unlock()
	touchOldChanges(m.st)
	var errs []error
	if err := m.adoptSeed(); err != nil {
		errs = append(errs, err)
	}
	referenced := map[string]bool{}
	// Seeded packages not adopted yet are kept for the next start.
	for _, p := range seededBlobs() {
		referenced[p] = true
	}
	for name, app := range m.apps() {
		for _, r := range app.Sequence {
			referenced[revisions.BlobPath(name, r.Revision)] = true
		}
		if app.removing() {
			continue // what is left of it waits for a remove
		}
		for _, r := range app.Sequence {
			if err := m.be.Mount(name, r.Revision); err != nil {
				errs = append(errs, err)
			} else if err := m.keepManifest(name, r.Revision); err != nil {
				errs = append(errs, err)
			}
		}
		if m.unlinked(name) {
			continue
		}
		if err := m.activate(name, app.Current); err != nil {
			errs = append(errs, fmt.Errorf("cannot make %s revision %d runnable: %w", name, app.Current, err))
		}
	}
	if err := m.ensureUsers(); err != nil {
		errs = append(errs, err)
	}
	if err := m.ensurePolicies(); err != nil {
		errs = append(errs, err)
	}
	for _, chg := range m.st.ChangesInProgress() {
		var name string
		var rev Revision
		if chg.Get("app-name", &name) == nil && chg.Get("revision", &rev) == nil {
			referenced[revisions.BlobPath(name, rev.Revision)] = true
			dl := downloadPath(name, rev.Revision)
			referenced[dl], referenced[dl+".partial"] = true, true
		}
	}
	m.dropOrphans(referenced)
	return errors.Join(errs...)
}

// touchOldChanges records the app key of changes in progress made by an
// agent that did not record keys, so that the conflict check sees them;
// the state must be locked.
func touchOldChanges(st *state.State) {
	for _, chg := range st.ChangesInProgress() {
		var name string
		if manager.Touches(chg) == nil && chg.Get("app-name", &name) == nil {
			manager.Touch(chg, manager.AppKey(name))
		}
	}
}

// Stop asks the kept sandboxes of the apps to end (idle ones at once):
// they hold mounts of the packages, and none may outlive the agent idle
// (a busy one ends with its last app process).
func (m *Manager) Stop() {
	m.be.RetireSandboxes()
}

// unlinked reports whether a remove of the app called name is in progress
// and has made it inactive already; the state must be locked.
func (m *Manager) unlinked(name string) bool {
	chg := m.changeOf(name)
	if chg == nil {
		return false
	}
	for _, t := range chg.Tasks() {
		if t.Kind() == "unlink-app" && t.Status() == state.DoneStatus {
			return true
		}
	}
	return false
}

// keepManifest keeps the manifest of a revision installed before the agent
// kept manifests, read once more from its mounted package through the same
// checks as at install.
func (m *Manager) keepManifest(name string, rev int) error {
	if _, err := m.be.KeptManifest(name, rev); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mf, err := m.be.ReadManifest(name, rev)
	if err != nil {
		return fmt.Errorf("cannot keep the manifest of %s revision %d: %w", name, rev, err)
	}
	return m.be.KeepManifest(rev, mf)
}

// dropOrphans removes blobs, partial uploads and downloads that no app or
// change in progress refers to: what a crash left between an upload and
// the start of its change, and what a failed download kept for a command
// sent again (until the agent's next start, so that it cannot fill the
// disk for good).
func (m *Manager) dropOrphans(referenced map[string]bool) {
	for _, dir := range []string{dirs.PackagesDir, downloadsDir()} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if !referenced[p] {
				m.log.Info("removing unreferenced package", "path", p)
				os.Remove(p)
			}
		}
	}
}
