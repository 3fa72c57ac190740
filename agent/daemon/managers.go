package daemon

import (
	"encoding/json"
	"errors"

	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/agent/ifacemgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/netmgr"
	"paddock.dev/paddock/agent/services"
)

// addManagers makes the agent's managers, in the order they start up and
// ensure. Adding a manager is one line in the list.
func (d *Daemon) addManagers(env manager.Env) {
	apps := appmgr.New(env)
	d.apps = apps
	d.services = services.New(env)
	d.health = health.New(env, apps)
	apps.Services, apps.Health = d.services, d.health // a refresh's health gate (appmgr/gate.go)
	d.ifaces = ifacemgr.New(env, apps)
	d.health.Services = d.services
	d.newCtl(apps)
	d.base = d.newBase(env) // base.go
	d.net = netmgr.New(env) // network.go configures it
	d.managers = []manager.Manager{
		apps,
		d.services,
		d.health,
		d.ifaces,
		d.base,
		d.net,
	}
}

// startUp brings each manager's part of the disk in line with the state.
// What went wrong is kept in startErr: the device reports it degraded.
func (d *Daemon) startUp() {
	var errs []error
	for _, m := range d.managers {
		if s, ok := m.(manager.StartUpper); ok {
			// A revision that cannot be mounted should not keep the others down.
			if err := s.StartUp(); err != nil {
				d.log.Error("startup", "err", err)
				errs = append(errs, err)
			}
		}
	}
	d.startErr = errors.Join(errs...)
}

// ensure runs each manager's Ensure, then the ready tasks.
func (d *Daemon) ensure() {
	for _, m := range d.managers {
		if err := m.Ensure(); err != nil {
			d.log.Error("ensure", "err", err)
		}
	}
	if err := d.runner.Ensure(); err != nil {
		d.log.Error("ensure", "err", err)
	}
}

// stopManagers stops the managers, last first.
func (d *Daemon) stopManagers() {
	for i := len(d.managers) - 1; i >= 0; i-- {
		if s, ok := d.managers[i].(manager.Stopper); ok {
			s.Stop()
		}
	}
}

// report tells the fleet link when what the managers report, or the
// device's health, changed.
func (d *Daemon) report() {
	if d.link != nil && d.reportChanged() {
		d.link.Changed()
	}
}

// reportChanged reports whether what the managers report changed since
// it was last called.
func (d *Daemon) reportChanged() bool {
	var reports []any
	for _, m := range d.managers {
		if r, ok := m.(manager.Reporter); ok {
			reports = append(reports, r.Report())
		}
	}
	if d.fleet != nil {
		// The device's health is derived from more than the reports.
		health, problems := d.fleet.Health()
		reports = append(reports, health, problems)
	}
	b, _ := json.Marshal(reports)
	if s := string(b); s != d.reported {
		d.reported = s
		return true
	}
	return false
}
