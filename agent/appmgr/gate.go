package appmgr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/agent/state"
)

// The health gate of a refresh. A refresh stops the services of the app
// (stop-services), makes the new revision current (link-revision), starts
// its services (start-services) and judges it within the package's
// health-window (check-health, 30 s by default) before it commits
// (discard-old). A revision found unhealthy in the window fails
// check-health, and the whole change is undone in reverse order: the new
// services stop, the previous revision is current again with its own data
// (the new revision's data is a copy, removed with it), and its services
// start again. The change's error and log say why ("health check failed:
// ..."), and a fleet command that asked for the refresh answers
// "reverted: health check failed: ..." (Reverted).
//
// What check-health waits for, by what the new revision declares:
//   - a health probe or a check-health hook (or the app speaks through the
//     ctl socket): health okay within the window passes at once; health
//     error, or not okay when the window ends, fails; a service that ends
//     badly meanwhile fails at once too;
//   - services but no health signal: the services must stay up for the
//     whole window (none may end with a failure, be waiting to restart,
//     or be in a crash loop); a oneshot that ended with status 0 is fine;
//   - neither: nothing to wait for, and the refresh commits at once.
//
// A first install is not gated (there is no revision to go back to): the
// service manager starts its services once the change is done.
//
// Health lives in the agent's memory: when the agent stops during the
// window, check-health runs again at its next start, with a whole window.

// Services is what a refresh asks of the service manager (agent/services).
type Services interface {
	// StartApp starts the services of the app's current revision; StopApp
	// stops every service of the app and waits until they ended.
	StartApp(app string) error
	StopApp(app string) error
	// Status returns the app's services.
	Status(app string) []apitypes.ServiceInfo
}

// Health is what a refresh asks of the health manager (agent/health).
type Health interface {
	// Reset starts judging the app afresh at revision rev.
	Reset(app string, rev int)
	// Wait waits until the app's health is okay or error, or ctx ends;
	// it returns at once for an app that nothing judges.
	Wait(ctx context.Context, app string) (health.Health, error)
	// Declared reports whether something judges the app's health.
	Declared(app string) bool
}

// HealthFailedKey holds, in a refresh change, why its health check failed
// (see Reverted).
const HealthFailedKey = "health-failed"

// gateSlice is how often the gate looks at the services while it waits
// for the health to settle.
var gateSlice = 250 * time.Millisecond

// gateTasks returns the tasks of a refresh around link: stop the services
// before it; start them after it, then check the health.
func (m *Manager) gateTasks(name string, rev int) (before, after []*state.Task) {
	stop := m.st.NewTask("gate-stop-services", fmt.Sprintf("Stop the services of %q", name))
	start := m.st.NewTask("gate-start-services", fmt.Sprintf("Start the services of %q revision %d", name, rev))
	check := m.st.NewTask("gate-check-health", fmt.Sprintf("Check the health of %q revision %d", name, rev))
	return []*state.Task{stop}, []*state.Task{start, check}
}

func (m *Manager) doStopServices(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || m.Services == nil {
		return err
	}
	if err := m.Services.StopApp(s.name); err != nil {
		// A failed task is not undone: the services it stopped start again.
		m.Services.StartApp(s.name)
		return err
	}
	return nil
}

// undoStopServices starts the services of the revision that is current
// again (link-revision was undone first) and has its health judged
// afresh; after a failed health check, it logs that the refresh was
// reverted.
func (m *Manager) undoStopServices(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || s.before == nil {
		return err
	}
	if m.Services != nil {
		if err := m.Services.StartApp(s.name); err != nil {
			return err
		}
	}
	if m.Health != nil {
		m.Health.Reset(s.name, s.before.Current)
	}
	m.st.Lock()
	defer m.st.Unlock()
	var why string
	if t.Change().Get(HealthFailedKey, &why) == nil {
		t.Logf("reverted: health check failed: %s; revision %d is current again and its services run", why, s.before.Current)
	}
	return nil
}

func (m *Manager) doStartServices(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || m.Services == nil {
		return err
	}
	if err := m.Services.StartApp(s.name); err != nil {
		// A failed task is not undone: the services it started stop.
		m.Services.StopApp(s.name)
		return err
	}
	return nil
}

func (m *Manager) undoStartServices(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil || m.Services == nil {
		return err
	}
	return m.Services.StopApp(s.name)
}

// doCheckHealth waits for the verdict on the new revision within its
// health window, and fails the task, undoing the refresh, when the
// revision is unhealthy.
func (m *Manager) doCheckHealth(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	mf, err := m.be.KeptManifest(s.name, s.rev.Revision)
	if err != nil {
		return err
	}
	window := mf.HealthWindowOrDefault()
	start := timeNow()
	why, err := m.judge(m.runner.Stopping(), s.name, s.rev.Revision, window)
	if errors.Is(err, context.Canceled) {
		return state.Retry{Reason: "the agent stops: the health check runs again at its next start"}
	}
	took := timeNow().Sub(start).Round(10 * time.Millisecond)
	m.st.Lock()
	defer m.st.Unlock()
	if why == "" {
		t.Logf("healthy after %s (window %s)", took, window)
		return nil
	}
	t.Change().Set(HealthFailedKey, why)
	t.Logf("unhealthy after %s: %s; undoing the refresh", took, why)
	return fmt.Errorf("health check failed: %s", why)
}

// judge watches app at revision rev for up to window and returns why it
// is unhealthy, or "" (see the rules above). It returns ctx's error when
// ctx ends first.
func (m *Manager) judge(ctx context.Context, app string, rev int, window time.Duration) (string, error) {
	since := timeNow()
	deadline := since.Add(window)
	if m.Health != nil {
		m.Health.Reset(app, rev)
	}
	declared := m.Health != nil && m.Health.Declared(app)
	if !declared && len(m.services(app)) == 0 {
		return "", nil
	}
	h := health.Health{Status: health.Unknown}
	for {
		if why := servicesDown(m.services(app), since); why != "" {
			return why, nil
		}
		slice, cancel := context.WithDeadline(ctx, minTime(deadline, timeNow().Add(gateSlice)))
		waitStart := timeNow()
		if m.Health != nil {
			h, _ = m.Health.Wait(slice, app)
		}
		switch {
		case h.Status == health.Error:
			cancel()
			return h.Message, nil
		case h.Status == health.Okay && declared:
			cancel()
			return "", nil
		}
		if timeNow().Sub(waitStart) < gateSlice/2 {
			<-slice.Done() // Wait returned at once: nothing judges the app
		}
		cancel()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !timeNow().Before(deadline) {
			break
		}
	}
	if declared {
		msg := fmt.Sprintf("not healthy within %s (%s", window, h.Status)
		if h.Message != "" {
			msg += ": " + h.Message
		}
		return msg + ")", nil
	}
	return "", nil // the services stayed up for the window
}

// services returns the app's services, none without a service manager.
func (m *Manager) services(app string) []apitypes.ServiceInfo {
	if m.Services == nil {
		return nil
	}
	return m.Services.Status(app)
}

// servicesDown says which of the services failed since the gate began:
// ended badly (and stopped, or waiting to restart, or restarted already),
// or in a crash loop; "" when none did.
func servicesDown(svcs []apitypes.ServiceInfo, since time.Time) string {
	var down []string
	for _, s := range svcs {
		name := s.App + "." + s.Service
		switch {
		case s.CrashLoop:
			down = append(down, fmt.Sprintf("service %s is in a crash loop", name))
		case s.LastExit != nil && s.LastExit.Code != 0 && !s.LastExit.Time.Before(since):
			down = append(down, fmt.Sprintf("service %s ended with status %d", name, s.LastExit.Code))
		case s.State == apitypes.ServiceFailed || s.State == apitypes.ServiceWaiting:
			down = append(down, fmt.Sprintf("service %s is %s", name, s.State))
		default:
			continue
		}
		if s.Message != "" && !strings.Contains(down[len(down)-1], s.Message) {
			down[len(down)-1] += " (" + s.Message + ")"
		}
	}
	slices.Sort(down)
	return strings.Join(down, "; ")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Reverted returns why the refresh of chg undid itself, its new revision
// unhealthy, once it is undone: "health check failed: ..."; "" for any
// other change. The state must be locked.
func Reverted(chg *state.Change) string {
	var why string
	if chg.Get(HealthFailedKey, &why) != nil || !chg.IsReady() {
		return ""
	}
	for _, t := range chg.Tasks() {
		if t.Kind() == "link-revision" && t.Status() != state.UndoneStatus {
			return "" // the previous revision is not current again
		}
	}
	return "health check failed: " + why
}
