package ifacemgr

import (
	"fmt"
	"sort"
	"strings"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/ota/manifest"
)

// Connections lists the plugs of the installed apps (of app only, when
// it is not ""), connected or not, sorted by interface and plug, like
// 'snap connections': an unconnected hardware plug waits for an operator.
func (m *Manager) Connections(app string) ([]apitypes.ConnectionInfo, error) {
	if app != "" {
		if err := manifest.CheckName("app", app); err != nil {
			return nil, refusedError{err}
		}
		if !m.installed(app) {
			return nil, fmt.Errorf("%s is %w (see 'paddock list')", app, ErrNotInstalled)
		}
	}
	_, g, err := m.apps.Gadget()
	if err != nil {
		return nil, err
	}
	out := []apitypes.ConnectionInfo{}
	for _, a := range m.apps.List() {
		if (app != "" && a.Name != app) || a.Revision == 0 || a.Type != manifest.TypeApp {
			continue
		}
		mf, _, err := m.apps.CurrentManifest(a.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, m.plugInfos(a.Name, mf, g)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Interface != out[j].Interface {
			return out[i].Interface < out[j].Interface
		}
		return out[i].Plug < out[j].Plug
	})
	return out, nil
}

// plugInfos describes the plugs of app, described by mf.
func (m *Manager) plugInfos(app string, mf *manifest.Manifest, g *gadget.Gadget) []apitypes.ConnectionInfo {
	eff := m.Effective(app, mf, g)
	m.mu.Lock()
	disconnected := m.cache.Disconnected
	m.mu.Unlock()
	var before map[string]string
	if prev, err := m.apps.PreviousManifest(app); err == nil && prev != nil {
		before = plugsOf(prev)
	}
	var out []apitypes.ConnectionInfo
	for _, plug := range sortedPlugs(plugsOf(mf)) {
		iface := plugsOf(mf)[plug]
		ref := PlugRef{app, plug}.String()
		ci := apitypes.ConnectionInfo{Interface: iface, Plug: ref, Hardware: IsHardware(iface), AutoConnect: autoConnects(iface)}
		if before != nil && before[plug] == "" {
			ci.New = true
			ci.Notes = append(ci.Notes, "new in this revision")
		}
		if c, ok := eff[plug]; ok {
			ci.Slot, ci.By = c.Slot, c.By
		} else if disconnected[ref] {
			ci.Notes = append(ci.Notes, "disconnected by an operator")
		} else if ci.Hardware {
			ci.Notes = append(ci.Notes, "waits for an operator ('paddock connect "+ref+"')")
		}
		out = append(out, ci)
	}
	return out
}

// Interfaces describes the interface catalog: what each interface grants,
// whether it auto-connects, and the gadget's slots of it.
func (m *Manager) Interfaces() ([]apitypes.InterfaceInfo, error) {
	_, g, err := m.apps.Gadget()
	if err != nil {
		return nil, err
	}
	out := []apitypes.InterfaceInfo{}
	for _, i := range interfaces.All() {
		out = append(out, apitypes.InterfaceInfo{
			Name: i.Name, Summary: i.Summary, AutoConnect: autoConnects(i.Name), Hardware: IsHardware(i.Name),
			Grants: grants(i), Slots: slotsOf(g, i.Name),
		})
	}
	return out, nil
}

// grants says in short phrases what a connected plug of i adds to the sandbox.
func grants(i *interfaces.Interface) []string {
	var out []string
	if i.HostNetwork {
		out = append(out, "the host's network namespace")
	}
	for _, mt := range i.Mounts {
		out = append(out, fmt.Sprintf("%s read-only at %s", mt.Source, mt.Target))
	}
	for _, d := range i.Devices {
		minor := fmt.Sprint(d.Minor)
		if d.Minor < 0 {
			minor = "*"
		}
		out = append(out, fmt.Sprintf("device %s %d:%s %s", d.Type, d.Major, minor, d.Access))
	}
	if len(i.Syscalls) > 0 {
		out = append(out, "system calls "+strings.Join(i.Syscalls, " "))
	}
	if len(i.AppArmor) > 0 {
		out = append(out, fmt.Sprintf("%d AppArmor rules", len(i.AppArmor)))
	}
	if IsHardware(i.Name) {
		out = append(out, "the device nodes of the connected gadget slot")
	}
	return out
}

// Report returns the plugs of the installed apps with their connections:
// the interface manager's part of the state reported to the fleet.
func (m *Manager) Report() any {
	conns, err := m.Connections("")
	if err != nil {
		return nil
	}
	return conns
}
