// Package fleetlink connects the agent to the fleet: it implements the
// mqtt.Device that the link drives, verifying commands against the trusted
// keys and applying them through the app manager.
package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
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
}

var _ mqtt.Device = (*Device)(nil)

// Apps is what the fleet link asks of the app manager (appmgr.Manager).
type Apps interface {
	List() []apitypes.AppInfo
	Info(name string) (apitypes.AppInfo, error)
	Install(bundle []byte, pkg io.Reader, opts appmgr.InstallOptions) (string, error)
	Revert(name string) (string, error)
	Remove(name string) (string, error)
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
	case mqtt.ActionBaseUpdate, mqtt.ActionReboot, mqtt.ActionPing, mqtt.ActionConfigSet:
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
		return d.change(ctx, cmd, progress, d.apps.Remove)
	case mqtt.ActionRevert:
		return d.change(ctx, cmd, progress, d.apps.Revert)
	case mqtt.ActionConfigSet:
		return d.configSet(cmd.Args)
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

// install downloads the package (resuming an earlier cut), checks it and
// installs it, reporting the download and each step.
func (d *Device) install(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	a := cmd.Args
	if a.Assertions == "" || len(a.URLs) == 0 {
		return nil, errors.New("install needs the package's assertions and at least one URL")
	}
	trusted, err := keys.LoadTrusted()
	if err != nil {
		return nil, err
	}
	// Check the signature before downloading anything.
	rev, err := trust.CheckRevision([]byte(a.Assertions), trusted, timeNow(), "")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(dirs.LibDir, "downloads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	limits, err := d.limits(a.Download)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(dir, fmt.Sprintf("%s_%d.pdk", rev.Name, rev.Revision))
	err = fetch.Download(ctx, a.URLs, dest, rev.Size, rev.SHA256, fetch.Options{
		Limits:  limits,
		Retries: 3,
		Progress: func(done, total int64) {
			if total > 0 {
				progress("download", int(done*100/total))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	defer os.Remove(dest)
	f, err := os.Open(dest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	id, err := d.apps.Install([]byte(a.Assertions), f, appmgr.InstallOptions{Refresh: cmd.Action == mqtt.ActionRefresh})
	if err != nil {
		return nil, err
	}
	if err := d.wait(ctx, id, progress); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"name": rev.Name, "revision": rev.Revision, "version": rev.Version})
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
func (d *Device) change(ctx context.Context, cmd *mqtt.Command, progress func(string, int), start func(string) (string, error)) (json.RawMessage, error) {
	if cmd.Args.Name == "" {
		return nil, fmt.Errorf("%s needs the name of an app", cmd.Action)
	}
	id, err := start(cmd.Args.Name)
	if err != nil {
		return nil, err
	}
	if err := d.wait(ctx, id, progress); err != nil {
		return nil, err
	}
	info, err := d.apps.Info(cmd.Args.Name)
	if err != nil { // removed
		return json.Marshal(map[string]string{"name": cmd.Args.Name})
	}
	return json.Marshal(map[string]any{"name": info.Name, "revision": info.Revision, "version": info.Version})
}

// wait follows a change to its end, reporting each task that finishes.
func (d *Device) wait(ctx context.Context, id string, progress func(string, int)) error {
	reported := map[string]bool{}
	for {
		d.st.Lock()
		chg := d.st.Change(id)
		if chg == nil {
			d.st.Unlock()
			return fmt.Errorf("internal error: change %s vanished", id)
		}
		tasks := chg.Tasks()
		done := 0
		var steps []string
		for _, t := range tasks {
			if t.Status() == state.DoneStatus {
				done++
				if !reported[t.ID()] {
					reported[t.ID()] = true
					steps = append(steps, t.Summary())
				}
			}
		}
		ready, err := chg.IsReady(), chg.Err()
		d.st.Unlock()
		for _, s := range steps {
			progress(s, done*100/max(len(tasks), 1))
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

// configSet records a setting in the agent's state.
func (d *Device) configSet(a mqtt.Args) (json.RawMessage, error) {
	if a.Key == "" {
		return nil, errors.New("config-set needs a key")
	}
	d.st.Lock()
	defer d.st.Unlock()
	cfg := map[string]string{}
	d.st.Get("config", &cfg)
	cfg[a.Key] = a.Value
	d.st.Set("config", cfg)
	return json.Marshal(map[string]string{a.Key: a.Value})
}

// State reports the installed apps.
func (d *Device) State() mqtt.State {
	s := mqtt.State{AgentVersion: Version, Health: "ok", Apps: []mqtt.AppState{}}
	for _, a := range d.apps.List() {
		as := mqtt.AppState{Name: a.Name, Version: a.Version, Revision: a.Revision}
		for _, r := range a.Revisions {
			as.Revisions = append(as.Revisions, r.Revision)
		}
		s.Apps = append(s.Apps, as)
	}
	return s
}
