package ifacemgr

import (
	"maps"
	"paddock.dev/paddock/agent/policy"
	"slices"
	"sort"

	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/ota/manifest"
)

// Who made a connection.
const (
	// ByAuto: the plug's interface connects by itself (network).
	ByAuto = "auto"
	// ByGadget: the gadget's connections named it, when the app arrived.
	ByGadget = "gadget"
	// ByOperator: 'paddock connect' or a fleet connect command.
	ByOperator = "operator"
)

// Connection is one connected plug, as the state records it.
type Connection struct {
	Interface string `json:"interface"`
	// Slot is the name of a slot of the gadget, or SystemSlot(Interface)
	// for an interface that the system provides (network).
	Slot string `json:"slot"`
	// By says who made it: ByAuto, ByGadget or ByOperator.
	By string `json:"by"`
	// Content is the folder that the providing app's slot (Slot is
	// APP:SLOT) shares, for a content plug, as it was when connected.
	Content *policy.ContentSlot `json:"content,omitempty"`
}

// SystemSlot is the name of the system's slot of interface iface.
func SystemSlot(iface string) string { return ":" + iface }

// record is the interface manager's part of the state.
type record struct {
	// Connections are the connected plugs, by APP:PLUG.
	Connections map[string]Connection `json:"connections,omitempty"`
	// Disconnected are the plugs an operator disconnected: they are not
	// connected again automatically (auto-connect, gadget) until an
	// operator connects them.
	Disconnected map[string]bool `json:"disconnected,omitempty"`
	// Arrived are the installed apps whose arrival was handled: the
	// gadget's connections apply only when an app arrives (install or seed
	// adoption), not at its refreshes.
	Arrived map[string]bool `json:"arrived,omitempty"`
}

func newRecord() *record {
	return &record{Connections: map[string]Connection{}, Disconnected: map[string]bool{}, Arrived: map[string]bool{}}
}

func (r *record) clone() *record {
	c := newRecord()
	maps.Copy(c.Connections, r.Connections)
	maps.Copy(c.Disconnected, r.Disconnected)
	maps.Copy(c.Arrived, r.Arrived)
	return c
}

// plugsOf returns the plugs that the app described by mf declares, by
// name, with their interface: the top-level plugs and those of its
// commands (manifest.AllPlugs) and hooks (a hook's plug is named after
// its interface).
func plugsOf(mf *manifest.Manifest) map[string]string {
	out := map[string]string{}
	for _, p := range mf.AllPlugs() {
		out[p.Name] = p.Interface
	}
	for _, h := range mf.Hooks {
		for _, p := range h.Plugs {
			out[p] = p
		}
	}
	return out
}

// sortedPlugs returns the names of plugs, sorted.
func sortedPlugs(plugs map[string]string) []string {
	out := slices.Collect(maps.Keys(plugs))
	sort.Strings(out)
	return out
}

// IsHardware reports whether slots of interface iface come from the
// gadget (serial-port, i2c, ...): such plugs connect only through the
// gadget's connections or an operator.
func IsHardware(iface string) bool {
	i, ok := interfaces.Lookup(iface)
	return ok && i.Slot != nil
}

// autoConnects reports whether a plug of iface connects at install.
func autoConnects(iface string) bool {
	i, ok := interfaces.Lookup(iface)
	return ok && i.AutoConnect && !IsHardware(iface)
}

// gadgetSlot returns the slot that the gadget's connections give the plug
// ref of interface iface, or "": a connection to a slot of another
// interface gives nothing.
func gadgetSlot(g *gadget.Gadget, ref, iface string) string {
	if g == nil {
		return ""
	}
	for _, c := range g.Connections {
		if c.Plug != ref {
			continue
		}
		if s := g.Slots[c.Slot]; s != nil && s.Interface == iface {
			return c.Slot
		}
	}
	return ""
}

// effective returns the connections of the plugs of app, described by mf,
// by plug name: those recorded for plugs it still declares with the same
// interface, and, for plugs neither recorded nor disconnected by an
// operator, the gadget's connections when the app arrives and the
// auto-connections. It is the one rule: the policies of the app are
// resolved with it, and the state records what it gives.
func effective(rec *record, app string, mf *manifest.Manifest, g *gadget.Gadget) map[string]Connection {
	out := map[string]Connection{}
	for plug, iface := range plugsOf(mf) {
		ref := PlugRef{app, plug}.String()
		if c, ok := rec.Connections[ref]; ok {
			if c.Interface == iface {
				out[plug] = c
			}
			continue
		}
		if rec.Disconnected[ref] {
			continue
		}
		if !rec.Arrived[app] {
			if slot := gadgetSlot(g, ref, iface); slot != "" {
				out[plug] = Connection{Interface: iface, Slot: slot, By: ByGadget}
				continue
			}
		}
		if autoConnects(iface) {
			out[plug] = Connection{Interface: iface, Slot: SystemSlot(iface), By: ByAuto}
		}
	}
	return out
}

// settle records in rec the effective connections of app, as the current
// revision described by mf declares its plugs, and that the app arrived.
// It reports whether rec changed, and whether a connection went (a plug
// that the revision no longer declares).
func settle(rec *record, app string, mf *manifest.Manifest, g *gadget.Gadget) (changed, dropped bool) {
	eff := effective(rec, app, mf, g)
	declared := plugsOf(mf)
	for ref, c := range rec.Connections {
		a, plug := splitRef(ref)
		if a != app {
			continue
		}
		if e, ok := eff[plug]; !ok || e != c {
			delete(rec.Connections, ref)
			changed, dropped = true, true
		}
	}
	for plug, c := range eff {
		ref := PlugRef{app, plug}.String()
		if old, ok := rec.Connections[ref]; !ok || old != c {
			rec.Connections[ref] = c
			changed = true
		}
	}
	for ref := range rec.Disconnected {
		if a, plug := splitRef(ref); a == app && declared[plug] == "" {
			delete(rec.Disconnected, ref)
			changed = true
		}
	}
	if !rec.Arrived[app] {
		rec.Arrived[app] = true
		changed = true
	}
	return changed, dropped
}

// forget drops what rec holds of app, once it is removed; it reports
// whether rec changed.
func forget(rec *record, app string) bool {
	changed := rec.Arrived[app]
	delete(rec.Arrived, app)
	for _, m := range []map[string]bool{rec.Disconnected} {
		for ref := range m {
			if a, _ := splitRef(ref); a == app {
				delete(m, ref)
				changed = true
			}
		}
	}
	for ref := range rec.Connections {
		if a, _ := splitRef(ref); a == app {
			delete(rec.Connections, ref)
			changed = true
		}
	}
	return changed
}

// splitRef splits a recorded APP:PLUG.
func splitRef(ref string) (app, plug string) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			return ref[:i], ref[i+1:]
		}
	}
	return ref, ""
}
