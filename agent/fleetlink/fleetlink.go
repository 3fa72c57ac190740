// Package fleetlink connects the agent to the fleet: it implements the
// mqtt.Device that the link drives, verifying commands against the trusted
// keys and applying them through the app manager.
package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/fetch"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// Version is the agent version reported in the state.
var Version = "dev"

// Device is the agent as the fleet link sees it.
type Device struct {
	st     *state.State
	apps   Apps
	id     string
	groups []string
	// reboot restarts the machine; nil where the agent may not (a test root).
	reboot func() error
	// Download bounds artifact downloads (agent.yaml's download:); a
	// command's own limits override it field by field.
	Download fetch.Limits
	// StartErr is what went wrong at the agent's last start (the
	// managers' StartUp), which makes the device degraded until the next.
	StartErr error
	// AppHealth returns an app's health (agent/health), or nil when
	// nothing judges it; an app in error degrades the device.
	AppHealth func(app string) *apitypes.AppHealth
	// Interfaces connects and disconnects plugs; nil where the agent has
	// no interface manager.
	Interfaces Interfaces
	// Base updates the base; nil where the agent has no A/B slots.
	Base Base
}

// Interfaces is what the fleet link asks of the interface manager
// (ifacemgr.Manager).
type Interfaces interface {
	Connections(app string) ([]apitypes.ConnectionInfo, error)
	// Connect and Disconnect start changes that record the fleet command
	// asking for them (appmgr.CommandKey).
	Connect(plug, slot, command string) (string, error)
	Disconnect(plug, command string) (string, error)
}

var _ mqtt.Device = (*Device)(nil)

// Apps is what the fleet link asks of the app manager (appmgr.Manager).
type Apps interface {
	List() []apitypes.AppInfo
	Info(name string) (apitypes.AppInfo, error)
	// InstallFromURL, RevertFor and RemoveFor start changes that record
	// the fleet command asking for them (appmgr.CommandKey).
	InstallFromURL(bundle []byte, src appmgr.Source, opts appmgr.InstallOptions) (string, error)
	RevertFor(name, command string) (string, error)
	RemoveFor(name, command string) (string, error)
	// ConfigureFor starts the change that sets values of an app's
	// configuration for the fleet command with the given id.
	ConfigureFor(app string, values map[string]any, command string) (string, error)
	// DownloadProgress says how far the download task with the given id is.
	DownloadProgress(task string) (done, total int64, ok bool)
}

// New returns the device id in groups, over the agent's state and app manager.
func New(st *state.State, apps Apps, id string, groups []string, reboot func() error) *Device {
	return &Device{st: st, apps: apps, id: id, groups: groups, reboot: reboot}
}

var timeNow = time.Now

// Verify checks a command bundle against the trusted keys: the signature
// chain, that it is for this device or one of its groups, and its time window.
func (d *Device) Verify(bundle []byte) (*mqtt.Command, error) {
	trusted, err := keys.LoadTrusted()
	if err != nil {
		return nil, err
	}
	c, err := trust.CheckCommand(bundle, trusted, timeNow(), d.id, d.groups)
	if err != nil {
		return partialCommand(bundle), err
	}
	cmd := &mqtt.Command{ID: c.ID, Target: c.Target, Action: c.Action, Expiry: c.Expiry, Operator: c.Operator}
	if len(c.Body) > 0 {
		if err := json.Unmarshal(c.Body, &cmd.Args); err != nil {
			return cmd, fmt.Errorf("command %s: cannot decode its arguments: %w", c.ID, err)
		}
	}
	cmd.App = appOf(cmd)
	return cmd, nil
}

// appOf names the app a command concerns, so that the link runs commands
// for different apps side by side: the name argument (the plug's app for
// connect and disconnect), or the app-revision's name for install and
// refresh. It is only a hint for ordering: Apply checks everything again.
func appOf(cmd *mqtt.Command) string {
	switch cmd.Action {
	case mqtt.ActionInstall, mqtt.ActionRefresh:
		as, err := assert.DecodeBundle([]byte(cmd.Args.Assertions))
		if err != nil {
			return ""
		}
		for _, a := range as {
			if a.Type() == assert.AppRevisionType {
				return a.Header("name")
			}
		}
		return ""
	case mqtt.ActionConfigSet:
		app, _, _ := strings.Cut(cmd.Args.Key, ".")
		return app
	case mqtt.ActionBaseUpdate, mqtt.ActionReboot, mqtt.ActionPing:
		return ""
	}
	app, _, _ := strings.Cut(cmd.Args.Name, ":")
	return app
}

// partialCommand reads the id of a command that failed its checks, so that
// the refusal can name it; nothing else of it is trusted.
func partialCommand(bundle []byte) *mqtt.Command {
	as, err := assert.DecodeBundle(bundle)
	if err != nil {
		return nil
	}
	for _, a := range as {
		if a.Type() == assert.CommandType {
			return &mqtt.Command{ID: a.Header("id"), Action: a.Header("action"), Target: a.Header("target")}
		}
	}
	return nil
}

// errUnsupported answers actions this agent cannot carry out yet.
var errUnsupported = errors.New("not supported by this agent yet")

// Apply carries out a verified command.
func (d *Device) Apply(ctx context.Context, cmd *mqtt.Command, progress func(step string, percent int)) (json.RawMessage, error) {
	switch cmd.Action {
	case mqtt.ActionPing:
		return json.Marshal(map[string]any{"pong": timeNow().UTC()})
	case mqtt.ActionInstall, mqtt.ActionRefresh:
		return d.install(ctx, cmd, progress)
	case mqtt.ActionRemove:
		return d.change(ctx, cmd, progress, d.apps.RemoveFor)
	case mqtt.ActionRevert:
		return d.change(ctx, cmd, progress, d.apps.RevertFor)
	case mqtt.ActionConnect, mqtt.ActionDisconnect:
		return d.connection(ctx, cmd, progress)
	case mqtt.ActionConfigSet:
		return d.configSet(ctx, cmd, progress)
	case mqtt.ActionBaseUpdate:
		return d.baseUpdate(ctx, cmd, progress)
	case mqtt.ActionReboot:
		if d.reboot == nil {
			return nil, errors.New("reboot is not available: the agent does not run the machine (its root is not /)")
		}
		// Reboot once the answer is out.
		time.AfterFunc(2*time.Second, func() { d.reboot() })
		return json.Marshal(map[string]string{"reboot": "in 2s"})
	}
	return nil, fmt.Errorf("%s: %w", cmd.Action, errUnsupported)
}

// install starts the change that downloads the package, checks it and
// installs it, and waits for it, reporting the download and each step.
func (d *Device) install(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	a := cmd.Args
	if a.Assertions == "" || len(a.URLs) == 0 {
		return nil, errors.New("install needs the package's assertions and at least one URL")
	}
	limits, err := d.limits(a.Download)
	if err != nil {
		return nil, err
	}
	id, err := d.apps.InstallFromURL([]byte(a.Assertions), appmgr.Source{URLs: a.URLs, Limits: limits},
		appmgr.InstallOptions{Refresh: cmd.Action == mqtt.ActionRefresh, Command: cmd.ID})
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, cmd, id, progress)
}

// limits returns the device's download limits with what the command sets.
func (d *Device) limits(c *mqtt.DownloadLimits) (fetch.Limits, error) {
	l := d.Download
	if c == nil {
		return l, nil
	}
	if c.MinRate != 0 {
		l.MinRate = c.MinRate
	}
	for _, f := range []struct {
		name, value string
		to          *time.Duration
		positive    bool
	}{{"rate-window", c.RateWindow, &l.RateWindow, true}, {"deadline", c.Deadline, &l.Deadline, false}} {
		if f.value == "" {
			continue
		}
		v, err := time.ParseDuration(f.value)
		if err != nil || (f.positive && v <= 0) {
			return l, fmt.Errorf("the command's download %s %q is not a valid duration (such as 30s or 2h)", f.name, f.value)
		}
		*f.to = v
	}
	return l, nil
}

// change starts a change of the app manager for the command's app and waits for it.
func (d *Device) change(ctx context.Context, cmd *mqtt.Command, progress func(string, int), start func(name, command string) (string, error)) (json.RawMessage, error) {
	if cmd.Args.Name == "" {
		return nil, fmt.Errorf("%s needs the name of an app", cmd.Action)
	}
	id, err := start(cmd.Args.Name, cmd.ID)
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, cmd, id, progress)
}

// follow records that cmd started the change id, waits for the change and
// returns its outcome as the command's.
func (d *Device) follow(ctx context.Context, cmd *mqtt.Command, id string, progress func(string, int)) (json.RawMessage, error) {
	// Should the record fail, the change's data names the command too.
	cmd.Started(id)
	return d.outcome(ctx, id, progress)
}

// Resume answers a command cut short by a restart with the outcome of the
// change it started: the change recorded by the link, or else the change
// whose data names the command (the agent stopped before the link
// recorded it).
func (d *Device) Resume(ctx context.Context, cmd *mqtt.Command, change string, progress func(string, int)) (json.RawMessage, error) {
	d.st.Lock()
	chg := d.st.Change(change)
	if chg == nil {
		chg = changeOfCommand(d.st, cmd.ID)
	}
	d.st.Unlock()
	if chg == nil {
		return nil, mqtt.ErrNoChange
	}
	return d.outcome(ctx, chg.ID(), progress)
}

// changeOfCommand returns the change that the fleet command id asked for,
// or nil; the state must be locked.
func changeOfCommand(st *state.State, id string) *state.Change {
	for _, chg := range st.Changes() {
		var c string
		if chg.Get(appmgr.CommandKey, &c) == nil && c == id {
			return chg
		}
	}
	return nil
}

// outcome waits for the change id and returns the command's result: the
// app and revision it installed or went back to, or the app it removed.
func (d *Device) outcome(ctx context.Context, id string, progress func(string, int)) (json.RawMessage, error) {
	if err := d.wait(ctx, id, progress); err != nil {
		return nil, err
	}
	d.st.Lock()
	defer d.st.Unlock()
	chg := d.st.Change(id)
	if chg == nil {
		return nil, fmt.Errorf("internal error: change %s vanished", id)
	}
	if chg.Kind() == basemgr.ChangeKind {
		var b struct {
			Slot     string `json:"slot"`
			Name     string `json:"name"`
			Version  string `json:"version"`
			Revision int    `json:"revision"`
		}
		chg.Get("base-update", &b)
		return baseOutcome(map[string]any{"base": b.Name, "version": b.Version, "revision": b.Revision, "slot": b.Slot, "committed": true})
	}
	var name string
	var rev struct {
		Revision int    `json:"revision"`
		Version  string `json:"version"`
	}
	chg.Get("app-name", &name)
	if chg.Kind() == "connect" || chg.Kind() == "disconnect" {
		return d.connectionOutcome(chg)
	}
	if chg.Kind() == "remove" || chg.Get("revision", &rev) != nil {
		return json.Marshal(map[string]string{"name": name})
	}
	out := map[string]any{"name": name, "revision": rev.Revision, "version": rev.Version}
	// The interface manager reads the state: it is unlocked meanwhile.
	d.st.Unlock()
	plugs := d.unconnectedPlugs(name)
	d.st.Lock()
	if len(plugs) > 0 {
		out["unconnected-plugs"] = plugs
	}
	return json.Marshal(out)
}

// wait follows a change to its end, reporting each task that finishes
// and how far a download is.
func (d *Device) wait(ctx context.Context, id string, progress func(string, int)) error {
	reported := map[string]bool{}
	for {
		d.st.Lock()
		chg := d.st.Change(id)
		if chg == nil {
			d.st.Unlock()
			return fmt.Errorf("change %s is no longer known to the agent (see 'paddock changes')", id)
		}
		tasks := chg.Tasks()
		done := 0
		var steps []string
		var downloading string
		for _, t := range tasks {
			switch {
			case t.Status() == state.DoneStatus:
				done++
				if !reported[t.ID()] {
					reported[t.ID()] = true
					steps = append(steps, t.Summary())
				}
			case t.Status() == state.DoingStatus && t.Kind() == "download":
				downloading = t.ID()
			}
		}
		ready, err := chg.IsReady(), chg.Err()
		if why := appmgr.Reverted(chg); why != "" {
			// The refresh undid itself: the answer says so (the rollout counts it).
			err = errors.New(mqtt.RevertedPrefix + why)
		}
		d.st.Unlock()
		for _, s := range steps {
			progress(s, done*100/max(len(tasks), 1))
		}
		if n, total, ok := d.apps.DownloadProgress(downloading); ok && total > 0 {
			progress("download", int(n*100/total))
		}
		if ready {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// configSet sets a key of an app's configuration (Key is APP.KEY, Value
// JSON or text) through a configure change, which runs the app's
// configure hook first, and answers with the change's outcome: a refused
// value leaves the old one.
func (d *Device) configSet(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	app, key, ok := strings.Cut(cmd.Args.Key, ".")
	if !ok || app == "" || key == "" {
		return nil, fmt.Errorf("config-set needs APP.KEY, not %q", cmd.Args.Key)
	}
	id, err := d.apps.ConfigureFor(app, map[string]any{key: appmgr.ParseConfigValue(cmd.Args.Value)}, cmd.ID)
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, cmd, id, progress)
}

// State reports the installed apps and the device's health (health.go).
func (d *Device) State() mqtt.State {
	apps := d.apps.List()
	s := mqtt.State{AgentVersion: Version, Apps: []mqtt.AppState{}}
	s.Health, s.Problems = d.health(apps)
	s.Connections = d.connections()
	for _, a := range apps {
		as := mqtt.AppState{Name: a.Name, Version: a.Version, Revision: a.Revision}
		for _, r := range a.Revisions {
			as.Revisions = append(as.Revisions, r.Revision)
		}
		if h := d.appHealth(a.Name); h != nil {
			as.Health, as.HealthMessage = h.Status, shorten(printable(h.Message), maxProblemLen)
		}
		s.Apps = append(s.Apps, as)
	}
	if s.Base = d.baseState(); s.Base != nil {
		s.BaseSlot = s.Base.Running
	}
	return s
}
