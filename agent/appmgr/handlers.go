package appmgr

import (
	"fmt"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/manifest"
)

// A change of the app manager carries in its data:
//   - app-name: the app it works on (and its key, manager.AppKey, in what it touches);
//   - revision: the revision it installs, reverts to or removes (a Revision);
//   - before: the app as it was when the change began (an App, absent for a first install),
//     which undo handlers restore;
//   - assertions: the verified assertion bundle of an install.
//
// Every do handler is idempotent: after a crash the runner calls it again.

// setupChange records what the handlers of chg need; the state must be locked.
func setupChange(chg *state.Change, name string, before *App, rev Revision, bundle []byte) {
	chg.Set("app-name", name)
	manager.Touch(chg, manager.AppKey(name))
	chg.Set("revision", rev)
	if before != nil {
		chg.Set("before", before)
	}
	if bundle != nil {
		chg.Set("assertions", string(bundle))
	}
}

// installChange creates the change that installs rev, or only switches to
// it when the revision is kept on the device; the state must be locked.
// With a source, the package is downloaded by the change's first task.
func (m *Manager) installChange(name string, before *App, rev Revision, bundle []byte, kept bool, src *Source) *state.Change {
	kind, verb := "install", "Install"
	if before != nil {
		kind, verb = "refresh", "Refresh"
	}
	chg := m.st.NewChange(kind, fmt.Sprintf("%s %q revision %d (version %s)", verb, name, rev.Revision, rev.Version))
	setupChange(chg, name, before, rev, bundle)
	var tasks []*state.Task
	if !kept {
		if src != nil {
			tasks = append(tasks, m.downloadTask(chg, name, rev, *src))
		}
		tasks = append(tasks,
			m.st.NewTask("store-package", fmt.Sprintf("Store the verified package of %q revision %d", name, rev.Revision)),
			m.st.NewTask("mount-revision", fmt.Sprintf("Mount %q revision %d", name, rev.Revision)),
			m.st.NewTask("copy-data", fmt.Sprintf("Prepare the data of %q revision %d", name, rev.Revision)),
			m.st.NewTask("generate-profiles", fmt.Sprintf("Generate the security profiles of %q revision %d", name, rev.Revision)),
		)
	}
	link := m.st.NewTask("link-revision", fmt.Sprintf("Make revision %d of %q current", rev.Revision, name))
	var stop, check []*state.Task
	if before != nil {
		stop, check = m.gateTasks(name, rev.Revision) // gate.go: a refresh's health gate
	}
	stop = append(m.preHooks(name, before, rev), stop...)    // hooks.go
	check = append(m.postHooks(name, before, rev), check...) // hooks.go
	// The app's connections are recorded once the revision is current,
	// before its hooks run (connections.go).
	tasks = append(append(append(tasks, stop...), link, m.recordTask(name)), check...)
	tasks = append(tasks, m.st.NewTask("discard-old", fmt.Sprintf("Discard old revisions of %q", name)))
	for i, t := range tasks {
		if i > 0 {
			t.WaitFor(tasks[i-1])
		}
		chg.AddTask(t)
	}
	return chg
}

// taskKinds are the kinds of task of the app manager's changes.
var taskKinds = []string{
	"download", "store-package", "mount-revision", "copy-data", "generate-profiles",
	"link-revision", "discard-old", "unlink-app", "discard-app",
	"gate-stop-services", "gate-start-services", "gate-check-health",
	"run-hook", "set-config", "record-connections", "forget-connections",
}

// handlers returns the do and undo handlers of a kind of task; undo is
// nil for a task that is not undone.
func (m *Manager) handlers(kind string) (do, undo state.HandlerFunc) {
	switch kind {
	case "download":
		return m.doDownload, m.undoDownload
	case "store-package":
		return m.doStore, m.undoNewRevision
	case "mount-revision":
		return m.doMount, m.undoMount
	case "copy-data":
		return m.doCopyData, m.undoCopyData
	case "generate-profiles":
		return m.doProfiles, m.undoProfiles
	case "link-revision":
		return m.doLink, m.undoLink
	case "discard-old":
		return m.doDiscardOld, nil
	case "unlink-app":
		return m.doUnlink, m.undoUnlink
	case "discard-app":
		return m.doDiscardApp, nil
	case "gate-stop-services":
		return m.doStopServices, m.undoStopServices
	case "gate-start-services":
		return m.doStartServices, m.undoStartServices
	case "gate-check-health":
		return m.doCheckHealth, nil
	case "run-hook":
		return m.doRunHook, nil
	case "set-config":
		return m.doSetConfig, nil
	case "record-connections":
		return m.doRecordConnections, m.undoRecordConnections
	case "forget-connections":
		return m.doForgetConnections, nil
	}
	panic("internal error: no handlers of task kind " + kind)
}

func (m *Manager) addHandlers() {
	for _, kind := range taskKinds {
		do, undo := m.handlers(kind)
		m.runner.AddHandler(kind, do, undo)
	}
}

// setup is what a task's change carries.
type setup struct {
	name       string
	rev        Revision
	before     *App
	assertions string
}

func (m *Manager) setup(t *state.Task) (setup, error) {
	m.st.Lock()
	defer m.st.Unlock()
	chg := t.Change()
	var s setup
	if err := chg.Get("app-name", &s.name); err != nil {
		return s, fmt.Errorf("internal error: change %s lacks app-name: %w", chg.ID(), err)
	}
	if err := chg.Get("revision", &s.rev); err != nil {
		return s, fmt.Errorf("internal error: change %s lacks revision: %w", chg.ID(), err)
	}
	var before App
	if chg.Get("before", &before) == nil {
		s.before = &before
	}
	chg.Get("assertions", &s.assertions)
	return s, nil
}

// isNew reports whether the change brings a revision the device did not keep before.
func (s setup) isNew() bool {
	return s.before == nil || s.before.Revision(s.rev.Revision) == nil
}

func (m *Manager) doStore(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	if err := m.store(s); err != nil {
		// A failed task is not undone: drop the package Install stored.
		if s.isNew() {
			m.discard(s.name, s.rev.Revision)
		}
		return err
	}
	return nil
}

// store checks the stored package of the change and keeps its assertions.
func (m *Manager) store(s setup) error {
	size, err := m.be.PackageSize(s.name, s.rev.Revision)
	if err != nil {
		return fmt.Errorf("cannot find the stored package: %w", err)
	}
	if size != s.rev.Size {
		return fmt.Errorf("stored package of %s is %d bytes, want %d", s.name, size, s.rev.Size)
	}
	return m.be.SaveAssertions(s.name, s.rev.Revision, []byte(s.assertions))
}

// undoNewRevision removes every trace of a revision the change brought.
func (m *Manager) undoNewRevision(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || !s.isNew() {
		return err
	}
	return m.discard(s.name, s.rev.Revision)
}

func (m *Manager) doMount(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	if err := m.be.Mount(s.name, s.rev.Revision); err != nil {
		return err
	}
	// The one read of the package's manifest: it is checked and kept.
	mf, err := m.be.ReadManifest(s.name, s.rev.Revision)
	if err != nil {
		return err
	}
	if err := checkManifest(s, mf); err != nil {
		return err
	}
	if err := m.be.KeepManifest(s.rev.Revision, mf); err != nil {
		return err
	}
	return m.keepGadget(s.name, s.rev.Revision, mf)
}

func (m *Manager) doProfiles(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	mf, err := m.be.KeptManifest(s.name, s.rev.Revision)
	if err != nil {
		return err
	}
	// The commands' policies, resolved from the manifest, the app's
	// connections and the interface catalog, and the profiles compiled
	// from them.
	m.st.Lock()
	conns, err := m.connectionsOf(mf)
	m.st.Unlock()
	if err != nil {
		return err
	}
	return m.be.GenerateProfiles(s.rev.Revision, mf, m.Arch, conns)
}

func (m *Manager) undoProfiles(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || !s.isNew() {
		return err
	}
	return m.be.RemoveProfiles(s.name, s.rev.Revision)
}

// loadAppArmor loads the AppArmor profiles of a revision, where the kernel has AppArmor.
func (m *Manager) loadAppArmor(name string, rev int) error {
	mf, err := m.be.KeptManifest(name, rev)
	if err != nil {
		return err
	}
	return m.be.LoadAppArmor(name, rev, mf)
}

// deleteCgroups stops the app's sandboxes, with what runs in them, and
// removes the cgroups of the commands of a kept revision.
func (m *Manager) deleteCgroups(name string, rev int) error {
	if err := m.be.StopSandboxes(name, 0); err != nil {
		return err
	}
	mf, err := m.be.KeptManifest(name, rev)
	if err != nil {
		return nil // discarded already: a repeated task
	}
	for cmd := range mf.Apps {
		if err := m.be.DeleteCgroup(name, cmd); err != nil {
			return fmt.Errorf("cannot remove %s: %w (stop its processes first)", name, err)
		}
	}
	return nil
}

// discard removes a revision with its sandboxes and profiles. The package
// goes last, so that a revision that fails to go part-way keeps it: the
// state records the revision until discard succeeds, and never one whose
// package is gone.
func (m *Manager) discard(name string, rev int) error {
	// A kept sandbox holds a bind mount of the revision: it goes first.
	if err := m.be.StopSandboxes(name, rev); err != nil {
		return err
	}
	if err := m.be.RemoveProfiles(name, rev); err != nil {
		return err
	}
	return m.be.Discard(name, rev)
}

// checkManifest compares the package's manifest with its assertion. The
// manifest's values are not quoted: errors are read by every local user.
func checkManifest(s setup, mf *manifest.Manifest) error {
	if mf.Name != s.name || mf.Version != s.rev.Version || mf.Type != s.rev.Type {
		return fmt.Errorf("the name, version or type in the package's %s differ from what its assertion says: %s %s (type %s)",
			manifest.Path, s.name, s.rev.Version, s.rev.Type)
	}
	return nil
}

func (m *Manager) undoMount(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || !s.isNew() {
		return err
	}
	if err := m.be.Unmount(s.name, s.rev.Revision); err != nil {
		return err
	}
	// The kept manifest goes too (with the profiles, if any were made).
	return m.be.RemoveProfiles(s.name, s.rev.Revision)
}

func (m *Manager) doCopyData(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	from := 0
	if s.before != nil {
		from = s.before.Current
	}
	// Who the revision runs as decides who owns its data.
	mf, err := m.be.KeptManifest(s.name, s.rev.Revision)
	if err != nil {
		return err
	}
	user, err := m.recordUser(s.name, s.rev, mf)
	if err != nil {
		return err
	}
	return m.be.CreateData(s.name, s.rev.Revision, from, ownerOf(user))
}

func (m *Manager) undoCopyData(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || !s.isNew() {
		return err
	}
	if err := m.be.RemoveData(s.name, s.rev.Revision); err != nil {
		return err
	}
	if s.before == nil { // a first install also made the common data
		return m.be.RemoveCommonData(s.name)
	}
	return nil
}

// doLink makes the change's revision current, on disk and in the state.
func (m *Manager) doLink(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	// After a reboot the revision may need mounting again before it is made current.
	if err := m.be.Mount(s.name, s.rev.Revision); err != nil {
		return err
	}
	if err := m.loadAppArmor(s.name, s.rev.Revision); err != nil {
		m.restoreLinks(s)
		return err
	}
	if err := m.be.SetCurrent(s.name, s.rev.Revision); err != nil {
		// A failed task is not undone: put back what it switched half-way.
		m.restoreLinks(s)
		return err
	}
	m.st.Lock()
	defer m.st.Unlock()
	app := m.apps()[s.name]
	if app == nil {
		app = &App{Name: s.name}
	}
	app.add(s.rev)
	app.Current = s.rev.Revision
	if t.Change().Kind() != "revert" {
		// A revision signed by another key than the owner's passed as a takeover.
		app.publishedBy(s.rev.SignKey)
	}
	m.setApp(s.name, app)
	return nil
}

// undoLink restores the app as it was before the change.
func (m *Manager) undoLink(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	if err := m.restoreLinks(s); err != nil {
		return err
	}
	m.st.Lock()
	defer m.st.Unlock()
	m.setApp(s.name, s.before)
	return nil
}

// restoreLinks points the current links, and the AppArmor profiles, back
// at the revision that was current before the change.
func (m *Manager) restoreLinks(s setup) error {
	if s.before == nil {
		return m.be.ClearCurrent(s.name)
	}
	return m.activate(s.name, s.before.Current)
}

// activate makes revision rev of app name current and runnable: mounted (a
// power cut unmounts it), its AppArmor profiles loaded (the kernel forgets
// them at a boot), and the current links pointing at it (on the appliance
// they live on a tmpfs). It is idempotent.
func (m *Manager) activate(name string, rev int) error {
	if err := m.be.Mount(name, rev); err != nil {
		return err
	}
	if err := m.loadAppArmor(name, rev); err != nil {
		return err
	}
	return m.be.SetCurrent(name, rev)
}

// doDiscardOld drops the oldest revisions beyond the number kept.
func (m *Manager) doDiscardOld(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	keep := max(m.Keep, 2)
	for {
		m.st.Lock()
		app := m.apps()[s.name]
		m.st.Unlock()
		if app == nil || len(app.Sequence) <= keep {
			return nil
		}
		old := app.Sequence[0].Revision
		if old == app.Current {
			old = app.Sequence[1].Revision
		}
		if err := m.discard(s.name, old); err != nil {
			return err
		}
		m.st.Lock()
		app.Sequence = deleteRevision(app.Sequence, old)
		m.setApp(s.name, app)
		m.st.Unlock()
	}
}

func deleteRevision(seq []Revision, rev int) []Revision {
	out := seq[:0:0]
	for _, r := range seq {
		if r.Revision != rev {
			out = append(out, r)
		}
	}
	return out
}

func (m *Manager) doUnlink(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	return m.be.ClearCurrent(s.name)
}

// undoUnlink makes the app active again, unless its remove has begun
// discarding revisions: from there a remove goes forward only (see
// doDiscardApp), and the app stays inactive until a remove finishes it.
func (m *Manager) undoUnlink(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || s.before == nil {
		return err
	}
	m.st.Lock()
	app := m.apps()[s.name]
	m.st.Unlock()
	if app == nil || app.removing() {
		return nil
	}
	return m.activate(s.name, s.before.Current)
}

// doDiscardApp removes every revision and the data of the app, then
// forgets it. Once it has begun discarding revisions it goes forward only:
// the app is recorded inactive (Current 0) first, and each revision leaves
// the record as soon as it is gone, so that the state never records a
// revision that is not on disk. A failure leaves the change in Error with
// the app recorded as far as it is left, and a second remove (the same
// task again) finishes the job.
func (m *Manager) doDiscardApp(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	m.st.Lock()
	app := m.apps()[s.name]
	m.st.Unlock()
	if app != nil && !app.removing() {
		// The cgroups of the app's commands go too; the commands are
		// read from the kept manifests before the revisions are discarded.
		for _, r := range app.Sequence {
			if err := m.deleteCgroups(s.name, r.Revision); err != nil {
				return err
			}
		}
		app.Current = 0
		m.st.Lock()
		m.setApp(s.name, app) // checkpoint: no way back from here
		m.st.Unlock()
	}
	for app != nil && len(app.Sequence) > 0 {
		rev := app.Sequence[0].Revision
		if err := m.discard(s.name, rev); err != nil {
			return fmt.Errorf("cannot remove revision %d of %s: %w (run 'paddock remove %s' again)", rev, s.name, err, s.name)
		}
		app.Sequence = app.Sequence[1:]
		m.st.Lock()
		m.setApp(s.name, app)
		m.st.Unlock()
	}
	if err := m.be.RemoveApp(s.name); err != nil {
		return fmt.Errorf("cannot remove %s: %w (run 'paddock remove %s' again)", s.name, err, s.name)
	}
	m.st.Lock()
	defer m.st.Unlock()
	m.setApp(s.name, nil)
	m.forgetConfigLocked(s.name) // config.go
	return nil
}
