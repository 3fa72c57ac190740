// Package netmgr brings the appliance's network up, the way agent.yaml's
// network section says (config.Network): DHCP on every wired ethernet
// interface by default, or on the interfaces it names, or their static
// addresses. It sets each link up, its address and default route, and
// writes the name servers to /run/paddock-net/resolv.conf (dirs.ResolvConfRel),
// at which the base's read-only /etc/resolv.conf points.
//
// Each interface has a goroutine of its own: the agent's start never waits
// for a lease, and the fleet link connects once the network is there. A
// lease is renewed before it ends; a failed attempt (no carrier yet, no
// server, the interface gone) is tried again with backoff.
//
// The manager runs only in the appliance, when init started the agent on
// the real root: on a developer's host it never touches the network.
package netmgr

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
)

// Manager brings the network up. Its zero value is not usable: call New.
type Manager struct {
	// OnUp, when set before the first Ensure, is called when an interface
	// gets an address (the fleet link tries to connect at once).
	OnUp func()

	log *slog.Logger
	sys system

	mu     sync.Mutex
	conf   config.Network
	why    string // why the manager leaves the network alone, or ""
	status map[string]*apitypes.NetworkInterface
	dns    []netip.Addr // last written to resolv.conf

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// backoff is the wait after failed attempts in a row (tests shorten it).
	backoff func(n int) time.Duration
	// enter, when set, runs first in each interface's goroutine (tests:
	// lock the thread into a network namespace).
	enter func() error
}

// New returns a manager that leaves the network alone until Configure.
func New(env manager.Env) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{log: env.Log, sys: newSystem(), why: "not configured", status: map[string]*apitypes.NetworkInterface{},
		backoff: backoff, ctx: ctx, cancel: cancel}
}

// Configure sets what the manager does: c, or nothing when off is not
// empty (it says why: not the appliance).
func (m *Manager) Configure(c config.Network, off string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conf, m.why = c, off
	if off == "" && c.None() {
		m.why = "agent.yaml says network: none"
	}
	if m.why != "" {
		m.log.Info("network: left alone", "why", m.why)
	}
	if off == "" {
		// The folder is there before any service's sandbox is made, so
		// that each can show it (confine/launch), and the file the agent
		// writes into it later.
		if err := os.MkdirAll(filepath.Join(dirs.Root, dirs.NetRunRel), 0o755); err != nil {
			m.log.Warn("network", "err", fmt.Errorf("cannot make the folder of resolv.conf: %w", err))
		}
	}
}

// Ensure starts bringing up each interface the configuration names, or
// each wired ethernet interface present (one plugged in later too). It
// never waits for the network.
func (m *Manager) Ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.why != "" || m.ctx.Err() != nil {
		return nil
	}
	names := m.conf.Names()
	if !m.conf.Set {
		var err error
		if names, err = wiredInterfaces(); err != nil {
			return err
		}
	}
	for _, name := range names {
		if _, ok := m.status[name]; ok {
			continue
		}
		setting, ok := m.conf.Interfaces[name]
		if !ok {
			setting = config.Interface{DHCP: true}
		}
		method := "static"
		if setting.DHCP {
			method = "dhcp"
		}
		m.status[name] = &apitypes.NetworkInterface{Name: name, Method: method}
		m.wg.Add(1)
		go m.run(name, setting)
	}
	return nil
}

// Stop ends the interfaces' goroutines. What they set stays: the network
// outlives a restart of the agent.
func (m *Manager) Stop() {
	m.cancel()
	m.wg.Wait()
}

// Status returns what the manager did, interface by interface.
func (m *Manager) Status() *apitypes.NetworkStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &apitypes.NetworkStatus{Managed: m.why == "", Why: m.why, Interfaces: []apitypes.NetworkInterface{}}
	for _, i := range m.status {
		c := *i
		c.DNS = slices.Clone(i.DNS)
		st.Interfaces = append(st.Interfaces, c)
	}
	slices.SortFunc(st.Interfaces, func(a, b apitypes.NetworkInterface) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// run brings one interface up until the manager stops.
func (m *Manager) run(name string, setting config.Interface) {
	defer m.wg.Done()
	if m.enter != nil {
		if err := m.enter(); err != nil {
			m.update(name, func(s *apitypes.NetworkInterface) { s.Error = err.Error() })
			return
		}
	}
	if setting.DHCP {
		m.runDHCP(name)
		return
	}
	m.runStatic(name, setting)
}

// update changes the status of name under the lock, and writes
// resolv.conf when the name servers changed.
func (m *Manager) update(name string, fn func(s *apitypes.NetworkInterface)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m.status[name])
	var dns []netip.Addr
	for _, n := range slices.Sorted(maps.Keys(m.status)) {
		for _, s := range m.status[n].DNS {
			if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(dns, a) && len(dns) < config.MaxDNS {
				dns = append(dns, a)
			}
		}
	}
	if slices.Equal(dns, m.dns) {
		return
	}
	if err := writeResolvConf(dns); err != nil {
		m.log.Warn("network", "err", err)
		return
	}
	m.dns = dns
}

// writeResolvConf writes the name servers for the C library and Go's
// resolver alike.
func writeResolvConf(dns []netip.Addr) error {
	var b strings.Builder
	b.WriteString("# written by the paddock agent from DHCP or agent.yaml's network section\n")
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	p := filepath.Join(dirs.Root, dirs.ResolvConfRel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cannot write %s: %w", p, err)
	}
	if err := atomicfile.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", p, err)
	}
	return nil
}

// sleep waits for d, or until the manager stops; false then.
func (m *Manager) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.ctx.Done():
		return false
	}
}
