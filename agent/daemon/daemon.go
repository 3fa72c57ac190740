// Package daemon wires the agent together: the state, the task runner, the
// managers and the API, and the loop that runs ready tasks.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/agent/api"
	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/agent/ctl"
	"paddock.dev/paddock/agent/fleetlink"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/agent/ifacemgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/netmgr"
	"paddock.dev/paddock/agent/services"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/fetch"
)

// keepChanges is how many finished changes are remembered for 'paddock changes'.
const keepChanges = 50

// ensureInterval is how often the loop runs even when nothing wakes it.
const ensureInterval = 5 * time.Second

// Options tune the agent.
type Options struct {
	// Fleet configures the fleet link; no brokers means no link.
	Fleet config.Config
}

// Daemon is a running agent.
type Daemon struct {
	log      *slog.Logger
	lock     *os.File
	st       *state.State
	runner   *state.Runner
	managers []manager.Manager
	// apps is the app manager, which the API and the fleet link drive.
	apps interface {
		api.Apps
		fleetlink.Apps
	}
	// services is the service manager, which the API drives.
	services *services.Manager
	api      *api.Server
	link     *mqtt.Link
	// fleet is the agent as the fleet link sees it.
	fleet *fleetlink.Device
	// health keeps the apps' health, which the API and the fleet link show.
	health *health.Manager
	// ifaces is the interface manager, which the API and the fleet link drive.
	ifaces *ifacemgr.Manager
	// ctl is the in-app API ('paddock ctl'); configs the apps' configuration.
	ctl     *ctl.Server
	configs api.Configs
	// base is the base manager, which the API and the fleet link drive.
	base *basemgr.Manager
	// net brings the appliance's network up; the API shows it.
	net *netmgr.Manager
	// startErr is what went wrong when the managers started up.
	startErr error
	// reported is the last state of the managers reported to the fleet link.
	reported string
	cancel   context.CancelFunc

	// lastRequest is when the last API request came, in Unix nanoseconds.
	lastRequest atomic.Int64

	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Start opens the state, brings the disk in line with it, resumes
// interrupted changes and starts serving the API.
func Start(log *slog.Logger, opts Options) (*Daemon, error) {
	d := &Daemon{log: log, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := d.lockState(); err != nil {
		return nil, err
	}
	st, err := state.Open(dirs.StateFile)
	if err != nil {
		d.lock.Close()
		return nil, err
	}
	d.st = st
	st.SetLogger(log)
	// Changes wait while the state cannot be saved: resume them once it is.
	st.OnRecovered(d.Wake)
	d.runner = state.NewRunner(st)
	env := manager.NewEnv(st, d.runner, log)
	env.Wake = d.Wake
	d.addManagers(env)
	d.configureBase(opts.Fleet.Base) // base.go
	d.configureNetwork(opts.Fleet.Network)
	d.startUp()
	d.api = api.New(st, d.apps, log)
	d.api.Health = d.health.AppHealth
	d.api.OnRequest = d.noteRequest
	d.api.Configs = d.configs
	d.api.SetServices(d.services)
	d.api.ServeInterfaces(d.ifaces)
	d.api.ServeBase(d.base)
	d.api.ServeNetwork(d.net)
	if err := d.api.Listen(dirs.SocketPath); err != nil {
		d.lock.Close()
		return nil, err
	}
	if err := d.startLink(opts.Fleet); err != nil {
		d.api.Shutdown(context.Background())
		d.lock.Close()
		return nil, err
	}
	d.retryLinkOnNetwork() // network.go
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		if err := d.api.Serve(); err != nil {
			log.Error("api", "err", err)
		}
	}()
	d.startCtl()
	go d.loop()
	d.Wake()
	return d, nil
}

// lockState takes an exclusive lock so that two agents never share a state.
func (d *Daemon) lockState() error {
	if err := os.MkdirAll(dirs.LibDir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", dirs.LibDir, err)
	}
	f, err := os.OpenFile(filepath.Join(dirs.LibDir, "daemon.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot lock the state: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("cannot start: another paddock daemon uses %s", dirs.LibDir)
		}
		return fmt.Errorf("cannot lock the state: %w", err)
	}
	d.lock = f
	return nil
}

// Wake makes the loop run ready tasks now.
func (d *Daemon) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Daemon) loop() {
	defer d.wg.Done()
	t := time.NewTicker(ensureInterval)
	defer t.Stop()
	idle := idleRelease{quiet: releaseQuiet, last: time.Now()}
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
			idle.woke(time.Now())
		case <-t.C:
		}
		d.ensure()
		d.report()
		d.st.Lock()
		d.st.Prune(keepChanges)
		busy := len(d.st.ChangesInProgress()) > 0
		d.st.Unlock()
		idle.saw(d.lastRequestTime())
		if idle.due(time.Now(), busy) {
			d.release()
		}
	}
}

// Stop stops serving, waits for the task in progress to finish, and asks
// the kept sandboxes to end (idle ones at once). Calling it again does
// nothing.
func (d *Daemon) Stop() error {
	var err error
	d.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = d.api.Shutdown(ctx)
		d.stopCtl(ctx)
		if d.link != nil {
			d.cancel()
			d.link.Close()
		}
		// A download in progress gives up, to resume at the next start.
		d.runner.Stop()
		close(d.stop)
		d.wg.Wait()
		d.st.Close()
		d.stopManagers()
		os.Remove(dirs.SocketPath)
		d.lock.Close()
	})
	return err
}

// startLink starts the fleet link when a broker is configured.
func (d *Daemon) startLink(c config.Config) error {
	if len(c.Brokers) == 0 {
		return nil
	}
	tlsConf, err := c.TLSConfig()
	if err != nil {
		return err
	}
	id := c.DeviceIDOrDefault()
	var reboot func() error
	if dirs.Root == "/" {
		reboot = rebootMachine
	}
	dev := fleetlink.New(d.st, d.apps, id, c.Groups, reboot)
	dev.StartErr = d.startErr
	dev.AppHealth = d.health.AppHealth
	dev.Interfaces = d.ifaces
	dev.Base = d.base
	dev.Download = fetch.Limits{MinRate: c.Download.MinRate, RateWindow: c.Download.RateWindow, Deadline: c.Download.Deadline}
	ctx, cancel := context.WithCancel(context.Background())
	link, err := mqtt.Start(ctx, mqtt.Config{
		Brokers:      c.Brokers,
		DeviceID:     id,
		Groups:       c.Groups,
		StoreDir:     filepath.Join(dirs.LibDir, "fleet"),
		TLS:          tlsConf,
		AgentVersion: fleetlink.Version,
		Logf:         func(format string, args ...any) { d.log.Info(fmt.Sprintf(format, args...)) },
	}, dev)
	if err != nil {
		cancel()
		return fmt.Errorf("cannot start the fleet link: %w", err)
	}
	d.link, d.cancel, d.fleet = link, cancel, dev
	d.log.Info("fleet link started", "device", id, "brokers", strings.Join(c.Brokers, ","))
	return nil
}
