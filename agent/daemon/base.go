package daemon

import (
	"fmt"
	"sort"
	"strings"

	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/internal/dirs"
)

// newBase makes the base manager: it reboots the machine when the agent
// runs it, and commits a tried base once the device is healthy (baseGate).
func (d *Daemon) newBase(env manager.Env) *basemgr.Manager {
	b := basemgr.New(env)
	if dirs.Root == "/" {
		b.Reboot = rebootMachine
	}
	b.Gate = d.baseGate
	return b
}

// configureBase applies agent.yaml's base: section: a tried base's
// agent.yaml may shorten or lengthen the window it has to be healthy.
func (d *Daemon) configureBase(c config.Base) {
	if c.HealthWindow > 0 {
		d.base.HealthWindow = c.HealthWindow
	}
}

// baseGate is the health a tried base must show to be committed: the
// agent is up (it runs this) and started cleanly, its state is saved, the
// fleet link is connected when one is configured, and no app is in error
// or still waiting to be healthy. Failed changes of the past do not count:
// they say nothing of this boot.
func (d *Daemon) baseGate() (bool, string) {
	var bad []string
	if d.startErr != nil {
		bad = append(bad, "the agent's start: "+strings.ReplaceAll(d.startErr.Error(), "\n", "; "))
	}
	if reason, _ := d.st.Degraded(); reason != "" {
		bad = append(bad, reason)
	}
	if d.link != nil && !d.link.Connected() {
		bad = append(bad, "the fleet link is not connected")
	}
	var apps []string
	for app, h := range d.health.All() {
		if h.Status == health.Error || h.Status == health.Waiting {
			apps = append(apps, fmt.Sprintf("%s is %s: %s", app, h.Status, h.Message))
		}
	}
	sort.Strings(apps)
	bad = append(bad, apps...)
	return len(bad) == 0, strings.Join(bad, "; ")
}
