package admin

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/ota/pack"
)

// PlugChange is a plug that an install or a refresh would add or remove.
type PlugChange struct {
	// Plug is APP:PLUG.
	Plug      string `json:"plug"`
	Interface string `json:"interface"`
	// AutoConnect says the plug would connect by itself; a hardware plug
	// stays unconnected until the gadget or an operator connects it.
	AutoConnect bool `json:"auto-connect"`
	Hardware    bool `json:"hardware,omitempty"`
}

// DryRun is what 'paddock install|refresh --dry-run' prints with --json.
type DryRun struct {
	App     string       `json:"app"`
	Version string       `json:"version"`
	Added   []PlugChange `json:"added-plugs"`
	Removed []string     `json:"removed-plugs"`
}

// dryRun says which plugs installing the package pdk would add or remove,
// and whether each new one would connect, without changing anything.
func dryRun(c *command, pdk string, stdout io.Writer) error {
	mf, err := pack.ReadManifest(pdk)
	if err != nil {
		return err
	}
	cl := c.client()
	var have []apitypes.ConnectionInfo
	if _, err := cl.App(mf.Name); err == nil {
		if have, err = cl.Connections(mf.Name); err != nil {
			return err
		}
	} else if e := (*client.Error)(nil); !errors.As(err, &e) || e.Kind != "not-found" {
		return err
	}
	ifaces, err := cl.Interfaces()
	if err != nil {
		return err
	}
	catalog := map[string]apitypes.InterfaceInfo{}
	for _, i := range ifaces {
		catalog[i.Name] = i
	}
	wanted := map[string]bool{}
	for _, a := range mf.Apps {
		for _, p := range a.Plugs {
			wanted[p] = true
		}
	}
	for _, h := range mf.Hooks {
		for _, p := range h.Plugs {
			wanted[p] = true
		}
	}
	out := DryRun{App: mf.Name, Version: mf.Version, Added: []PlugChange{}, Removed: []string{}}
	var had []string
	for _, p := range have {
		had = append(had, p.Plug)
		if _, plug, _ := strings.Cut(p.Plug, ":"); !wanted[plug] {
			out.Removed = append(out.Removed, p.Plug)
		}
	}
	for plug := range wanted {
		ref := mf.Name + ":" + plug
		if slices.Contains(had, ref) {
			continue
		}
		i := catalog[plug] // a plug is named after its interface
		out.Added = append(out.Added, PlugChange{Plug: ref, Interface: plug, AutoConnect: i.AutoConnect, Hardware: i.Hardware})
	}
	sort.Slice(out.Added, func(i, j int) bool { return out.Added[i].Plug < out.Added[j].Plug })
	if *c.json {
		return cli.WriteJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%s %s (dry run: nothing was changed)\n", mf.Name, mf.Version)
	if len(out.Added) == 0 && len(out.Removed) == 0 {
		fmt.Fprintln(stdout, "no new plugs, none removed")
	}
	for _, p := range out.Added {
		what := "connects by itself (auto)"
		switch {
		case p.Hardware:
			what = fmt.Sprintf("hardware: stays unconnected until 'paddock connect %s'", p.Plug)
		case !p.AutoConnect:
			what = fmt.Sprintf("stays unconnected until 'paddock connect %s'", p.Plug)
		}
		fmt.Fprintf(stdout, "new plug %s (%s): %s\n", p.Plug, p.Interface, what)
	}
	for _, p := range out.Removed {
		fmt.Fprintf(stdout, "plug %s goes, with its connection\n", p)
	}
	return nil
}

// infoWithPlugs is what 'paddock info --json' prints: the app and its plugs.
type infoWithPlugs struct {
	apitypes.AppInfo
	Plugs []apitypes.ConnectionInfo `json:"plugs"`
}

// printPlugs lists the plugs of an app for 'paddock info'.
func printPlugs(w io.Writer, plugs []apitypes.ConnectionInfo) {
	if len(plugs) == 0 {
		return
	}
	fmt.Fprintln(w, "plugs:")
	for _, p := range plugs {
		slot := "not connected"
		if p.Slot != "" {
			slot = "connected to " + p.Slot + " (" + p.By + ")"
		}
		note := ""
		if p.New {
			note = ", new in this revision"
			if p.Slot == "" && p.Hardware {
				note += ": connect it with 'paddock connect " + p.Plug + "'"
			}
		}
		fmt.Fprintf(w, "  %s (%s): %s%s\n", p.Plug, p.Interface, slot, note)
	}
}
