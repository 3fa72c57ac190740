package launch

import (
	"testing"

	"paddock.dev/paddock/confine/profiles"
)

func TestStopsOnChange(t *testing.T) {
	serial := profiles.Connected{Plug: "serial", Interface: "serial-port", Slot: "gadget:s0", Nodes: []string{"/dev/ttyS1"}, OnDisconnect: profiles.DisconnectStop}
	other := serial
	other.Slot = "gadget:s1"
	content := profiles.Connected{Plug: "shared", Interface: "content", Slot: "other:shared"}
	tests := []struct {
		name     string
		old, new []profiles.Connected
		want     bool
	}{
		{"connect", nil, []profiles.Connected{serial}, false},
		{"disconnect of a hardware plug", []profiles.Connected{serial, content}, []profiles.Connected{content}, true},
		{"moved to another slot", []profiles.Connected{serial}, []profiles.Connected{other}, true},
		{"unchanged (a node appeared)", []profiles.Connected{serial}, []profiles.Connected{serial}, false},
		{"disconnect of a plug that does not stop", []profiles.Connected{serial, content}, []profiles.Connected{serial}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := &profiles.Policy{Connections: tt.old}
			new := &profiles.Policy{Connections: tt.new}
			if got := stopsOnChange(old, new); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSameSandbox(t *testing.T) {
	base := profiles.Policy{Revision: 2, Devices: profiles.DefaultDevices()}
	tests := []struct {
		name   string
		change func(p *profiles.Policy)
		want   bool
	}{
		{"devices", func(p *profiles.Policy) {
			p.Devices = append(p.Devices, profiles.Device{Type: "c", Major: 4, Minor: 65, Access: "rw"})
		}, true},
		{"apparmor", func(p *profiles.Policy) { p.AppArmor.Snippets = []string{"/dev/ttyS1 rw,"} }, true},
		{"mounts", func(p *profiles.Policy) { p.Mounts = []profiles.Mount{{Source: "/sys", Target: "/sys"}} }, false},
		{"network", func(p *profiles.Policy) { p.HostNetwork = true }, false},
		{"revision", func(p *profiles.Policy) { p.Revision = 3 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base
			tt.change(&n)
			if got := sameSandbox(&base, &n); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
