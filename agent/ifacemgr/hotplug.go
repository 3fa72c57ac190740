package ifacemgr

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/uevent"
	"paddock.dev/paddock/ota/manifest"
)

// Hotplug: devices that appear and go after boot (a USB serial adapter, a
// bus whose driver loads late). The source is the kernel's uevents on a
// NETLINK_KOBJECT_UEVENT socket (package uevent): a device runs no udevd,
// so the udev-like properties slots match by (USB vendor, product and
// serial, the /dev/serial/by-id and by-path links) are computed from sysfs
// by paddock. A device that appears and matches a gadget slot that plugs
// are connected to is granted to them: their app's policies are resolved
// again with it (Connection.Devices) and applied to the running processes
// (appmgr's Regenerate, launch.ApplyPolicy); its removal revokes it the
// same way. Devices present when the agent starts are read from sysfs.

// sysfs is where sysfs is mounted.
var sysfs = "/sys"

// hotplug is the interface manager's view of the devices plugged now.
type hotplug struct {
	mu      sync.Mutex
	devices map[string]gadget.Device // by node
	l       *uevent.Listener
	done    chan struct{}
}

// hotplugs holds the hotplug of each manager that started one.
var hotplugs sync.Map // *Manager → *hotplug

// StartUp reads the devices present and starts listening to the kernel's
// device events, on a device (the root directory is /; a test's agent in
// a temporary root leaves the host's devices alone). Policies are then
// resolved with the plugged devices that match their slots.
func (m *Manager) StartUp() error {
	if dirs.Root != "/" {
		return nil
	}
	h := &hotplug{devices: map[string]gadget.Device{}, done: make(chan struct{})}
	h.coldplug()
	m.watchDevices(h)
	l, err := uevent.Listen()
	if err != nil {
		m.log.Warn("devices plugged after start are not granted", "err", err)
		return nil
	}
	h.l = l
	go m.listen(h)
	return nil
}

// Stop stops listening to device events.
func (m *Manager) Stop() {
	v, ok := hotplugs.LoadAndDelete(m)
	if !ok {
		return
	}
	h := v.(*hotplug)
	if h.l != nil {
		h.l.Close()
		<-h.done
	}
}

// watchDevices makes the connections the app manager resolves policies
// with carry the plugged devices that match their slots.
func (m *Manager) watchDevices(h *hotplug) {
	hotplugs.Store(m, h)
	m.apps.SetConnections(func(app string, mf *manifest.Manifest, g *gadget.Gadget) []policy.Connection {
		conns := m.policyConnections(app, mf, g)
		for i, c := range conns {
			if c.Gadget != nil {
				conns[i].Devices = h.matching(c.Gadget)
			}
		}
		return conns
	})
}

// matching returns the plugged devices that slot s matches.
func (h *hotplug) matching(s *gadget.Slot) []gadget.Device {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []gadget.Device
	for _, d := range h.devices {
		if s.Matches(d) {
			out = append(out, d)
		}
	}
	return out
}

// coldplug records the character devices present, from /sys/dev/char.
func (h *hotplug) coldplug() {
	links, _ := filepath.Glob(filepath.Join(sysfs, "dev/char/*"))
	for _, link := range links {
		target, err := filepath.EvalSymlinks(link)
		if err != nil {
			continue
		}
		devpath, ok := strings.CutPrefix(target, filepath.Clean(sysfs))
		if !ok {
			continue
		}
		if e, err := uevent.FromSysfs(sysfs, devpath); err == nil && e.Node() != "" {
			h.devices[e.Node()] = deviceOf(e)
		}
	}
}

// deviceOf describes the device of event e as slots match it.
func deviceOf(e *uevent.Event) gadget.Device {
	return gadget.Device{Subsystem: e.Subsystem, Name: e.Node(), Major: e.Major, Minor: e.Minor, Props: uevent.Describe(sysfs, e)}
}

// listen handles the kernel's device events until Stop.
func (m *Manager) listen(h *hotplug) {
	defer close(h.done)
	for {
		e, err := h.l.Next()
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case errors.Is(err, uevent.ErrLost):
			// Look again at everything: events were lost.
			h.mu.Lock()
			h.devices = map[string]gadget.Device{}
			h.coldplug()
			h.mu.Unlock()
			m.regenerateFor(func(*gadget.Slot) bool { return true })
			continue
		case err != nil:
			m.log.Warn("cannot read device events; devices plugged from now on are not granted", "err", err)
			return
		}
		m.deviceEvent(h, e)
	}
}

// deviceEvent records a device that came or went and regenerates the
// policies of the apps with a plug connected to a slot it matches.
func (m *Manager) deviceEvent(h *hotplug, e *uevent.Event) {
	node := e.Node()
	if node == "" || e.Action != "add" && e.Action != "remove" {
		return
	}
	h.mu.Lock()
	d, known := h.devices[node]
	if e.Action == "add" {
		d = deviceOf(e)
		h.devices[node] = d
	} else {
		// Its sysfs is gone: match what was known of it.
		delete(h.devices, node)
	}
	h.mu.Unlock()
	if e.Action == "remove" && !known {
		d = gadget.Device{Subsystem: e.Subsystem, Name: node, Major: e.Major, Minor: e.Minor}
	}
	m.regenerateFor(func(s *gadget.Slot) bool { return s.Matches(d) })
}

// regenerateFor regenerates the policies of each app that has a plug
// connected to a gadget slot for which match holds.
func (m *Manager) regenerateFor(match func(*gadget.Slot) bool) {
	_, g, err := m.apps.Gadget()
	if err != nil || g == nil {
		return
	}
	for _, a := range m.apps.List() {
		if a.Revision == 0 || a.Type != manifest.TypeApp {
			continue
		}
		mf, _, err := m.apps.CurrentManifest(a.Name)
		if err != nil {
			continue
		}
		for _, c := range m.Effective(a.Name, mf, g) {
			if s := g.Slots[c.Slot]; s != nil && match(s) {
				if _, err := m.apps.Regenerate(a.Name); err != nil {
					m.log.Warn("cannot apply a plugged or removed device", "app", a.Name, "err", err)
				} else {
					m.log.Info("device change applied", "app", a.Name, "slot", c.Slot)
				}
				break
			}
		}
	}
}

var (
	_ manager.StartUpper = (*Manager)(nil)
	_ manager.Stopper    = (*Manager)(nil)
)
