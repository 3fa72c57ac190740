package appmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"sync"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
)

// An app's configuration is a flat set of keys with JSON values, kept in
// the agent's state per app; the gadget's defaults for the app are its
// values until set. Setting values is a change (configure): the app's
// configure hook runs first, and sees the new values through 'paddock ctl
// config get'; only once it succeeds are they kept. A failing hook refuses
// the change, and the old values stay.

// configKey is where the apps' configurations are kept in the state: app
// → key → value.
const configKey = "app-config"

// Bounds of an app's configuration: it lives in the agent's state.
const (
	MaxConfigKeys  = 256
	MaxConfigBytes = 64 << 10
	maxConfigKey   = 64
)

var configKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`) })

// CheckConfigKey says what is wrong with a configuration key, or nil.
func CheckConfigKey(k string) error {
	if len(k) > maxConfigKey || !configKeyRE().MatchString(k) {
		return refused("invalid configuration key %q (want at most %d lowercase letters, digits, dashes and underscores, like port or log-level)", k, maxConfigKey)
	}
	return nil
}

// configsLocked returns every app's set configuration; the state must be locked.
func (m *Manager) configsLocked() map[string]map[string]any {
	cfg := map[string]map[string]any{}
	if err := m.st.Get(configKey, &cfg); err != nil && !errors.Is(err, state.ErrNoState) {
		m.log.Error("cannot read the apps' configuration", "err", err)
	}
	return cfg
}

// Config returns the configuration of app: the gadget's defaults for it
// under the values set, only keys when some are given (a key without a
// value is left out). With pending, the values of a configure change in
// progress count too: what its configure hook sees.
func (m *Manager) Config(app string, keys []string, pending bool) (map[string]any, error) {
	if err := checkName(app); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := CheckConfigKey(k); err != nil {
			return nil, err
		}
	}
	m.st.Lock()
	defer m.st.Unlock()
	if m.apps()[app] == nil {
		return nil, fmt.Errorf("%s is %w (see 'paddock list')", app, ErrNotInstalled)
	}
	out := map[string]any{}
	if g, err := m.gadgetLocked(); err == nil && g != nil {
		maps.Copy(out, g.Defaults[app])
	}
	maps.Copy(out, m.configsLocked()[app])
	if pending {
		if chg := m.changeOf(app); chg != nil && chg.Kind() == "configure" {
			var patch map[string]any
			if chg.Get("config-patch", &patch) == nil {
				maps.Copy(out, patch)
			}
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	some := map[string]any{}
	for _, k := range keys {
		if v, ok := out[k]; ok {
			some[k] = v
		}
	}
	return some, nil
}

// Configure starts the change that sets values in app's configuration
// once its configure hook accepts them, and returns its id.
func (m *Manager) Configure(app string, values map[string]any) (string, error) {
	return m.ConfigureFor(app, values, "")
}

// ConfigureFor is Configure for the fleet command with the given id, which
// the change records.
func (m *Manager) ConfigureFor(app string, values map[string]any, command string) (string, error) {
	if err := checkName(app); err != nil {
		return "", err
	}
	if len(values) == 0 {
		return "", refused("cannot configure %s: no values given (want KEY=VALUE)", app)
	}
	for k := range values {
		if err := CheckConfigKey(k); err != nil {
			return "", err
		}
	}
	release, err := m.claim(app)
	if err != nil {
		return "", err
	}
	defer release()
	m.st.Lock()
	defer m.st.Unlock()
	a := m.apps()[app]
	if a == nil {
		return "", fmt.Errorf("cannot configure %s: it is %w", app, ErrNotInstalled)
	}
	if a.removing() {
		return "", unfinishedRemove("configure", app)
	}
	merged := maps.Clone(m.configsLocked()[app])
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, values)
	if err := checkConfigSize(app, merged); err != nil {
		return "", err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	chg := m.st.NewChange("configure", fmt.Sprintf("Configure %q (%s)", app, strings.Join(keys, ", ")))
	chg.Set("app-name", app)
	manager.Touch(chg, manager.AppKey(app))
	chg.Set("config-patch", values)
	setCommand(chg, command)
	hook := m.hookTask(app, "configure", a.Current, false)
	set := m.st.NewTask("set-config", fmt.Sprintf("Keep the new configuration of %q", app))
	set.WaitFor(hook)
	chg.AddTask(hook)
	chg.AddTask(set)
	m.wake()
	return chg.ID(), nil
}

// checkConfigSize refuses a configuration beyond the bounds.
func checkConfigSize(app string, cfg map[string]any) error {
	if len(cfg) > MaxConfigKeys {
		return refused("cannot configure %s: %d keys, more than the %d an app may have", app, len(cfg), MaxConfigKeys)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return refused("cannot configure %s: %v", app, err)
	}
	if len(b) > MaxConfigBytes {
		return refused("cannot configure %s: its configuration would take %d bytes, more than the %d allowed", app, len(b), MaxConfigBytes)
	}
	return nil
}

// doSetConfig keeps the change's values, once the configure hook took
// them; doing it twice gives the same result.
func (m *Manager) doSetConfig(t *state.Task) error {
	m.st.Lock()
	defer m.st.Unlock()
	chg := t.Change()
	var app string
	var patch map[string]any
	if err := chg.Get("app-name", &app); err != nil {
		return fmt.Errorf("internal error: change %s lacks app-name: %w", chg.ID(), err)
	}
	if err := chg.Get("config-patch", &patch); err != nil {
		return fmt.Errorf("internal error: change %s lacks its values: %w", chg.ID(), err)
	}
	all := m.configsLocked()
	if all[app] == nil {
		all[app] = map[string]any{}
	}
	maps.Copy(all[app], patch)
	m.st.Set(configKey, all)
	return nil
}

// forgetConfigLocked drops the configuration of a removed app; the state
// must be locked.
func (m *Manager) forgetConfigLocked(app string) {
	all := m.configsLocked()
	if _, ok := all[app]; ok {
		delete(all, app)
		m.st.Set(configKey, all)
	}
}

// ParseConfigValue reads the VALUE of a KEY=VALUE argument: JSON when it
// is (8080, true, "x", [1,2], {"a":1}), else the text itself.
func ParseConfigValue(s string) any {
	var v any
	if json.Unmarshal([]byte(s), &v) == nil {
		return v
	}
	return s
}
