package daemon

import (
	"context"
	"os"
	"path/filepath"

	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/ctl"
	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/internal/dirs"
)

// newCtl makes the in-app API over the app manager and the health manager.
func (d *Daemon) newCtl(apps *appmgr.Manager) {
	s := ctl.New(d.log, cgroup.ParentFor(dirs.Root))
	s.AppOfUID = apps.AppOfUID
	s.Health = d.health
	s.Config = func(app string, keys []string) (map[string]any, error) { return apps.Config(app, keys, true) }
	d.ctl = s
	d.configs = apps
}

// startCtl listens on the in-app socket and serves it: an agent that
// cannot is still of use (apps only lose their channel), so an error is
// logged, not returned.
func (d *Daemon) startCtl() {
	sock := filepath.Join(dirs.CtlSocketDir, dirs.CtlSocketName)
	if err := d.ctl.Listen(sock); err != nil {
		d.log.Error("in-app socket", "err", err)
		d.ctl = nil
		return
	}
	// The socket's documented path links to it.
	os.Remove(dirs.CtlSocketPath)
	if err := os.Symlink(filepath.Join(filepath.Base(dirs.CtlSocketDir), dirs.CtlSocketName), dirs.CtlSocketPath); err != nil {
		d.log.Warn("in-app socket link", "err", err)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.ctl.Serve(); err != nil {
			d.log.Error("in-app socket", "err", err)
		}
	}()
}

// stopCtl stops serving the in-app socket.
func (d *Daemon) stopCtl(ctx context.Context) {
	if d.ctl != nil {
		d.ctl.Shutdown(ctx)
	}
}
