package appmgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/ota/manifest"
)

// Hooks are the package's own commands at points of its life cycle, each
// run confined as a command of its own (hook-NAME: its policy has the
// app's top-level plugs and the hook's), through the same launch as
// 'paddock run', with a timeout, its output in the change's log:
//
//   - install, after a first install made the revision current: a failure
//     undoes the install;
//   - pre-refresh, of the installed revision, before a refresh stops
//     anything: a failure refuses the refresh, and the change undoes what
//     it prepared (the new package, data copy and profiles), so nothing
//     changed;
//   - post-refresh, of the new revision, once it is current and before its
//     services start: a failure undoes the refresh;
//   - remove, before the app is made inactive: a failure is logged, and the
//     remove goes on (an app must stay removable);
//   - configure, in a configuration change (config.go);
//   - check-health, by the health manager (agent/health).
//
// A hook the revision does not declare is a task that does nothing.

// HookRunner runs hooks; tests replace it.
type HookRunner interface {
	// RunHook runs hook of the current revision of app and returns its
	// output (the last part of it); an error says why it failed.
	RunHook(ctx context.Context, app, hook string) (string, error)
}

// DefaultHookTimeout is how long a hook may run.
const DefaultHookTimeout = 2 * time.Minute

// maxHookOutput bounds the output of a hook kept in the change's log.
const maxHookOutput = 4 << 10

// launchHooks runs hooks through 'paddock run APP.hook-NAME'.
type launchHooks struct{}

func (launchHooks) RunHook(ctx context.Context, app, hook string) (string, error) {
	return launch.RunChild(ctx, maxHookOutput, app+"."+manifest.HookCommand(hook))
}

// hookTask returns a task that runs hook of revision rev of app; optional
// hooks log their failure and go on.
func (m *Manager) hookTask(app, hook string, rev int, optional bool) *state.Task {
	t := m.st.NewTask("run-hook", fmt.Sprintf("Run the %s hook of %q revision %d", hook, app, rev))
	t.Set("hook", hook)
	t.Set("hook-revision", rev)
	if optional {
		t.Set("hook-optional", true)
	}
	return t
}

// preHooks are the hook tasks before a refresh stops the app: its
// installed revision's pre-refresh hook. None for an install.
func (m *Manager) preHooks(name string, before *App, rev Revision) []*state.Task {
	if before == nil || before.Current == 0 {
		return nil
	}
	return []*state.Task{m.hookTask(name, "pre-refresh", before.Current, false)}
}

// postHooks are the hook tasks once the revision is current: install for
// an install, post-refresh for a refresh.
func (m *Manager) postHooks(name string, before *App, rev Revision) []*state.Task {
	if before == nil {
		return []*state.Task{m.hookTask(name, "install", rev.Revision, false)}
	}
	return []*state.Task{m.hookTask(name, "post-refresh", rev.Revision, false)}
}

// removeHooks are the hook tasks of a remove, before the app goes inactive.
func (m *Manager) removeHooks(name string, app *App) []*state.Task {
	if app.Current == 0 {
		return nil // a remove that failed part-way: the app is inactive
	}
	return []*state.Task{m.hookTask(name, "remove", app.Current, true)}
}

// chainBefore makes the tasks run in order, the last before next.
func chainBefore(tasks []*state.Task, next *state.Task) {
	for i, t := range tasks {
		if i > 0 {
			t.WaitFor(tasks[i-1])
		}
	}
	if len(tasks) > 0 {
		next.WaitFor(tasks[len(tasks)-1])
	}
}

func (m *Manager) doRunHook(t *state.Task) error {
	m.st.Lock()
	var app, hook string
	var rev int
	var optional bool
	err := t.Change().Get("app-name", &app)
	if err == nil {
		err = t.Get("hook", &hook)
	}
	if err == nil {
		err = t.Get("hook-revision", &rev)
	}
	t.Get("hook-optional", &optional)
	m.st.Unlock()
	if err != nil {
		return fmt.Errorf("internal error: task %s lacks its hook: %w", t.ID(), err)
	}
	mf, err := m.be.KeptManifest(app, rev)
	if err != nil {
		return err
	}
	if mf.Hooks[hook] == nil {
		return nil
	}
	out, err := m.runHook(app, hook)
	m.st.Lock()
	defer m.st.Unlock()
	logOutput(t, hook, out)
	if errors.Is(err, errStopping) {
		return state.Retry{Reason: "the agent stops"}
	}
	if err != nil && optional {
		t.Logf("the %s hook failed, and %s goes on: %v", hook, t.Change().Kind(), err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("the %s hook of %s failed: %w", hook, app, err)
	}
	return nil
}

// errStopping is a hook cut short because the agent stops.
var errStopping = errors.New("the agent stops")

// runHook runs hook of app with the manager's timeout.
func (m *Manager) runHook(app, hook string) (string, error) {
	stopping := m.runner.Stopping()
	ctx, cancel := context.WithTimeout(stopping, m.HookTimeout)
	defer cancel()
	out, err := m.Hooks.RunHook(ctx, app, hook)
	switch {
	case err == nil:
		return out, nil
	case stopping.Err() != nil:
		return out, errStopping
	case ctx.Err() != nil:
		return out, fmt.Errorf("it did not end within %v (it was killed)", m.HookTimeout)
	}
	return out, err
}

// logOutput puts a hook's output in the task's log, a line an entry; the
// state must be locked.
func logOutput(t *state.Task, hook, out string) {
	out = strings.TrimSpace(out)
	if out == "" {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		t.Logf("%s: %s", hook, strings.Map(func(r rune) rune {
			if r < ' ' && r != '\t' || r == 0x7f {
				return ' '
			}
			return r
		}, line))
	}
}
