package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
)

// Connection is a plug of the app connected to a slot: what the agent's
// connection manager passes to Resolve for each connected plug.
type Connection struct {
	// Plug is the plug's name as the app declares it.
	Plug string `json:"plug"`
	// Interface is the plug's interface.
	Interface string `json:"interface"`
	// Slot is "gadget:SLOT" (a hardware slot of the gadget), "APP:SLOT"
	// (a content slot of app APP), or "" for a plug that connects by
	// itself without a slot (network).
	Slot string `json:"slot,omitempty"`
	// Gadget is the gadget's slot, for hardware interfaces. The device
	// comes from the slot only, never from the plug.
	Gadget *gadget.Slot `json:"gadget,omitempty"`
	// Devices are the devices plugged now that match Gadget (hotplug,
	// Slot.Matches), for slots matched by USB properties or whose node
	// comes and goes; their nodes are granted besides the slot's own.
	Devices []gadget.Device `json:"devices,omitempty"`
	// Content is the providing app's folder, for content.
	Content *ContentSlot `json:"content,omitempty"`
}

// ContentSlot is a folder of one app's data that it shares through a
// content slot of its app.yaml.
type ContentSlot struct {
	// App is the providing app.
	App string `json:"app"`
	// Source is the folder on the host (below dirs.Root).
	Source string `json:"source"`
	// Write shares it read-write; otherwise read-only.
	Write bool `json:"write,omitempty"`
}

// AutoConnections returns the plugs of the app described by m that connect
// at install by themselves: those of interfaces that auto-connect
// (network, the observe interfaces judged safe). Callers that keep no
// connections pass them to Resolve.
func AutoConnections(m *manifest.Manifest) []Connection {
	var out []Connection
	seen := map[string]bool{}
	for _, cmd := range Commands(m) {
		for _, pl := range plugsOf(m, cmd) {
			i, ok := interfaces.Lookup(pl.iface)
			if !ok || !i.AutoConnect || seen[pl.name] {
				continue
			}
			seen[pl.name] = true
			out = append(out, Connection{Plug: pl.name, Interface: pl.iface})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Plug < out[b].Plug })
	return out
}

// plug is a plug of a command as the policy reads it.
type plug struct {
	name, iface string
	target      string // content: where the folder appears
}

// plugsOf returns the plugs of command cmd: the app's own and the command's.
func plugsOf(m *manifest.Manifest, cmd string) []plug {
	var out []plug
	for _, pl := range m.PlugsOf(cmd) {
		out = append(out, plug{name: pl.Name, iface: pl.Interface, target: pl.Target})
	}
	return out
}

// SharedFolder returns the folder that app provider (described by m)
// shares through its slot named slot: a ContentSlot for a Connection. It
// fails when the app has no such slot, or the slot's interface shares no
// folder.
func SharedFolder(m *manifest.Manifest, slot string) (*ContentSlot, error) {
	s := m.Slots[slot]
	if s == nil {
		return nil, fmt.Errorf("cannot find slot %s:%s (see 'paddock connections %s')", m.Name, slot, m.Name)
	}
	if i, ok := interfaces.Lookup(s.Interface); !ok || i.Share == nil {
		return nil, fmt.Errorf("slot %s:%s of interface %q shares no folder", m.Name, slot, s.Interface)
	}
	return &ContentSlot{App: m.Name, Source: filepath.Join(dirs.AppDataDir(m.Name, "common"), s.Path), Write: s.Write}, nil
}

// connect gives the policy p of a command what connection c of plug pl
// brings.
func connect(p *profiles.Policy, pl plug, c Connection) error {
	i, ok := interfaces.Lookup(c.Interface)
	if !ok {
		return fmt.Errorf("cannot connect plug %s: unknown interface %q", c.Plug, c.Interface)
	}
	if pl.iface != c.Interface {
		return fmt.Errorf("cannot connect plug %s: it is a %s plug, not %s", c.Plug, pl.iface, c.Interface)
	}
	add(p, i)
	conn := profiles.Connected{Plug: c.Plug, Interface: c.Interface, Slot: c.Slot, OnDisconnect: i.OnDisconnect}
	var g interfaces.Grant
	switch {
	case i.Slot != nil:
		if c.Gadget == nil || c.Gadget.Interface != i.Name {
			return fmt.Errorf("cannot connect plug %s: a %s plug needs a %s slot of the gadget", c.Plug, i.Name, i.Name)
		}
		var matched []string
		for _, d := range c.Devices {
			if c.Gadget.Matches(d) {
				matched = append(matched, d.Name)
			}
		}
		g = i.Slot.Grant(c.Gadget.SlotAttrs, matched)
	case i.Share != nil:
		if c.Content == nil {
			return fmt.Errorf("cannot connect plug %s: a %s plug needs a slot of the providing app", c.Plug, i.Name)
		}
		target, err := shareTarget(p.App, pl)
		if err != nil {
			return err
		}
		g = i.Share(interfaces.Share{Source: c.Content.Source, Target: target, Write: c.Content.Write})
	}
	for _, n := range g.Nodes {
		if !safeNode(n) {
			return fmt.Errorf("cannot connect plug %s: device path %q is not a plain path under /dev/ (fix the gadget's slot)", c.Plug, n)
		}
	}
	grant(p, &conn, g)
	p.Connections = append(p.Connections, conn)
	return nil
}

// safeNode reports whether n is a device path that AppArmor rules hold as
// it is (the gadget's parser allows no other; devices come from hotplug too).
func safeNode(n string) bool {
	return strings.HasPrefix(n, "/dev/") && filepath.Clean(n) == n && !strings.ContainsAny(n, " \t\n\"{}[]*?^,@#\\\x00")
}

// shareTarget is where the folder of content plug pl appears in app's
// sandbox: below its common data, so that its profile covers it.
func shareTarget(app string, pl plug) (string, error) {
	t := pl.target
	if t == "" {
		t = pl.name
	}
	if !filepath.IsLocal(t) || filepath.Clean(t) != t {
		return "", fmt.Errorf("cannot connect plug %s: target %q is not a path inside the app's common data", pl.name, t)
	}
	return filepath.Join(profiles.SandboxDataDir, app, "common", t), nil
}

// grant adds g to p and records what the connection conn outlives a launch with.
func grant(p *profiles.Policy, conn *profiles.Connected, g interfaces.Grant) {
	for _, n := range g.Nodes {
		conn.Nodes = appendNew(conn.Nodes, n)
		rules := []string{n + " rwk,"}
		if target, ok := nodeTarget(n); ok && target != n {
			rules = append(rules, target+" rwk,") // AppArmor sees the node a link points to
		}
		for _, r := range rules {
			p.AppArmor.Snippets = appendNew(p.AppArmor.Snippets, r)
		}
		if d, ok := deviceOf(n); ok {
			dev := profiles.Device{Type: d.kind, Major: d.major, Minor: d.minor, Access: "rw"}
			if !slices.Contains(p.Devices, dev) {
				p.Devices = append(p.Devices, dev)
			}
		}
	}
	conn.Files = append(conn.Files, g.Files...)
	for _, m := range g.Mounts {
		src := m.Source
		if strings.HasPrefix(src, "/sys/") {
			// sysfs classes are links to the devices; the launcher follows
			// no link to a writable source.
			if t, err := filepath.EvalSymlinks(src); err == nil {
				src = t
			}
		}
		if !exists(src) {
			continue // given when the policy is resolved again after it appears
		}
		mt := profiles.Mount{Source: src, Target: m.Target, Write: m.Write}
		if !slices.Contains(p.Mounts, mt) {
			p.Mounts = append(p.Mounts, mt)
		}
	}
	for _, r := range g.AppArmor {
		p.AppArmor.Snippets = appendNew(p.AppArmor.Snippets, r)
	}
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// hostPath is where the path p of the device is on this machine.
func hostPath(p string) string { return filepath.Join(dirs.Root, p) }

// nodeTarget returns the device path the node n is, or links to.
func nodeTarget(n string) (string, bool) {
	t, err := filepath.EvalSymlinks(hostPath(n))
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(dirs.Root, t)
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	t = "/" + rel
	return t, safeNode(t)
}

// exists reports whether the host directory of a mount exists.
func exists(src string) bool {
	_, err := os.Stat(src)
	return err == nil
}
