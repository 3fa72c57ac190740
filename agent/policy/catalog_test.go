package policy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func intp(i int) *int { return &i }

// resolveOne resolves command "a" of an app with the single plug p (of
// interface iface, with a content target) connected by c.
func resolveOne(t *testing.T, iface string, c Connection) *profiles.Policy {
	t.Helper()
	yaml := fmt.Sprintf("name: a\nversion: \"1\"\nplugs:\n  p:\n    interface: %s\n    target: in\napps:\n  a:\n    command: bin/a\n", iface)
	m, err := manifest.Parse([]byte(yaml), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	c.Plug, c.Interface = "p", iface
	pols, err := Resolve(m, 1, launch.User{UID: 70001, GID: 70001}, []Connection{c})
	if err != nil {
		t.Fatal(err)
	}
	return pols[0]
}

// TestInterfaceContributions resolves a plug of every interface of the
// catalog, connected, and checks what each adds to the command's policy.
func TestInterfaceContributions(t *testing.T) {
	hostDev(t)
	shared := filepath.Join(dirs.AppDataDir("b", "common"), "out")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	hw := func(iface string, a interfaces.SlotAttrs) Connection {
		return Connection{Slot: "gadget:s", Gadget: &gadget.Slot{Name: "s", Interface: iface, SlotAttrs: a}}
	}
	ro := func(src, dst string) profiles.Mount { return profiles.Mount{Source: src, Target: dst} }
	null := profiles.Device{Type: "c", Major: 1, Minor: 3, Access: "rw"}
	zero := profiles.Device{Type: "c", Major: 1, Minor: 5, Access: "rw"}
	target := "/var/lib/paddock/data/a/common/in"
	tests := []struct {
		iface   string
		conn    Connection
		hostNet bool
		mounts  []profiles.Mount
		rules   []string
		devices []profiles.Device
		nodes   []string
		files   int
		stop    bool
	}{
		{iface: "network", hostNet: true},
		{iface: "network-bind", hostNet: true},
		{iface: "network-observe", hostNet: true, rules: []string{"network netlink raw,", "@{PROC}/@{pid}/net/** r,"}},
		{iface: "network-control", hostNet: true, rules: []string{"capability net_admin,", "network packet,"}, stop: true},
		{iface: "hardware-observe", mounts: []profiles.Mount{ro("/sys", "/sys")}, rules: []string{"/sys/ r,", "/sys/** r,"}},
		{iface: "system-observe", mounts: []profiles.Mount{ro("/proc", "/run/host/proc")}, rules: []string{"/run/host/proc/@{pid}/{stat,statm,status,cmdline,comm,cgroup} r,"}},
		{iface: "log-observe", mounts: []profiles.Mount{ro("/var/log", "/var/log")}, rules: []string{"/var/log/** r,"}},
		{iface: "mount-observe", mounts: []profiles.Mount{ro("/proc", "/run/host/proc")}, rules: []string{"/run/host/proc/1/{mounts,mountinfo,mountstats} r,"}},
		// Absent nodes: listed for a later grant, no device entry.
		{iface: "serial-port", conn: hw("serial-port", interfaces.SlotAttrs{Path: "/dev/ttyS99"}), rules: []string{"/dev/ttyS99 rwk,"}, nodes: []string{"/dev/ttyS99"}, stop: true},
		{iface: "serial-port", conn: hw("serial-port", interfaces.SlotAttrs{USBVendor: "0403"}), stop: true},
		{iface: "i2c", conn: hw("i2c", interfaces.SlotAttrs{Path: "/dev/i2c-42"}), rules: []string{"/dev/i2c-42 rwk,"}, nodes: []string{"/dev/i2c-42"}, stop: true},
		{iface: "spi", conn: hw("spi", interfaces.SlotAttrs{Path: "/dev/spidev9.1"}), rules: []string{"/dev/spidev9.1 rwk,"}, nodes: []string{"/dev/spidev9.1"}, stop: true},
		{iface: "gpio", conn: hw("gpio", interfaces.SlotAttrs{Chip: intp(7), Number: intp(3)}), rules: []string{"/dev/gpiochip7 rwk,"}, nodes: []string{"/dev/gpiochip7"}, stop: true},
		{iface: "pwm", conn: hw("pwm", interfaces.SlotAttrs{Chip: intp(9), Number: intp(1)}), rules: []string{"/sys/class/pwm/pwmchip9/pwm1/{period,duty_cycle,enable,polarity,capture} rw,"}, files: 6, stop: true},
		// Present nodes: their numbers read from this machine's /dev.
		{iface: "custom-device", conn: hw("custom-device", interfaces.SlotAttrs{Paths: []string{"/dev/null", "/dev/zero"}}), rules: []string{"/dev/null rwk,", "/dev/zero rwk,"}, devices: []profiles.Device{null, zero}, nodes: []string{"/dev/null", "/dev/zero"}, stop: true},
		{iface: "content", conn: Connection{Slot: "b:out", Content: &ContentSlot{App: "b", Source: shared, Write: true}}, mounts: []profiles.Mount{{Source: shared, Target: target, Write: true}}, rules: []string{target + "/** mrwlk,"}},
		{iface: "content", conn: Connection{Slot: "b:out", Content: &ContentSlot{App: "b", Source: shared}}, mounts: []profiles.Mount{ro(shared, target)}, rules: []string{target + "/** mr,"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.iface] = true
		p := resolveOne(t, tt.iface, tt.conn)
		if p.HostNetwork != tt.hostNet {
			t.Errorf("%s: got host network %v, want %v", tt.iface, p.HostNetwork, tt.hostNet)
		}
		if !slices.Equal(p.Mounts, tt.mounts) {
			t.Errorf("%s: got mounts %+v, want %+v", tt.iface, p.Mounts, tt.mounts)
		}
		for _, r := range tt.rules {
			if !slices.Contains(p.AppArmor.Snippets, r) {
				t.Errorf("%s: got AppArmor rules %q, want %q among them", tt.iface, p.AppArmor.Snippets, r)
			}
		}
		if want := append(profiles.DefaultDevices(), tt.devices...); !slices.Equal(p.Devices, want) {
			t.Errorf("%s: got devices %+v, want %+v", tt.iface, p.Devices, want)
		}
		if len(p.Connections) != 1 {
			t.Fatalf("%s: got connections %+v, want one", tt.iface, p.Connections)
		}
		c := p.Connections[0]
		if !slices.Equal(c.Nodes, tt.nodes) || len(c.Files) != tt.files || (c.OnDisconnect == profiles.DisconnectStop) != tt.stop {
			t.Errorf("%s: got connection %+v, want nodes %q, %d files, stop %v", tt.iface, c, tt.nodes, tt.files, tt.stop)
		}
		if !slices.Equal(p.Plugs, []string{tt.iface}) {
			t.Errorf("%s: got plugs %q", tt.iface, p.Plugs)
		}
	}
	for _, i := range interfaces.All() {
		if !covered[i.Name] {
			t.Errorf("interface %s has no case here", i.Name)
		}
	}
}

// TestResolveMatchedDevices checks that a slot matched by USB properties
// grants the nodes of the plugged devices that match it, and only those.
func TestResolveMatchedDevices(t *testing.T) {
	hostDev(t)
	ftdi := map[string]string{gadget.PropVendor: "0403", gadget.PropModel: "6001"}
	c := Connection{Slot: "gadget:adapter", Gadget: &gadget.Slot{Name: "adapter", Interface: "serial-port", SlotAttrs: interfaces.SlotAttrs{USBVendor: "0403"}},
		Devices: []gadget.Device{{Name: "/dev/null", Props: ftdi}, {Name: "/dev/zero", Props: map[string]string{gadget.PropVendor: "10c4"}}}}
	p := resolveOne(t, "serial-port", c)
	if got := p.Nodes(); !slices.Equal(got, []string{"/dev/null"}) {
		t.Errorf("got nodes %q, want the matching device only", got)
	}
	if !slices.Contains(p.Devices, profiles.Device{Type: "c", Major: 1, Minor: 3, Access: "rw"}) || slices.Contains(p.Devices, profiles.Device{Type: "c", Major: 1, Minor: 5, Access: "rw"}) {
		t.Errorf("got devices %+v, want 1:3 and not 1:5", p.Devices)
	}
}

// TestGolden compiles the profiles of a few plug sets and compares the
// policy file and the AppArmor profile with testdata (go test -update
// rewrites them). apparmor_parser checks each profile where it is
// installed.
func TestGolden(t *testing.T) {
	hostDev(t)
	shared := filepath.Join(dirs.AppDataDir("b", "common"), "out")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	const yaml = `name: a
version: "1"
plugs: [network, hardware-observe]
apps:
  web:
    command: bin/web
    plugs: [network-bind]
  modem:
    command: bin/modem
    plugs: [serial-port, network-control]
  viewer:
    command: bin/viewer
    plugs:
      media:
        interface: content
        target: media
      system-observe:
      fan:
        interface: pwm
`
	m, err := manifest.Parse([]byte(yaml), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	conns := append(AutoConnections(m),
		Connection{Plug: "serial-port", Interface: "serial-port", Slot: "gadget:modem",
			Gadget: &gadget.Slot{Name: "modem", Interface: "serial-port", SlotAttrs: interfaces.SlotAttrs{Path: "/dev/ttyS63"}}},
		Connection{Plug: "network-control", Interface: "network-control"},
		Connection{Plug: "media", Interface: "content", Slot: "b:out", Content: &ContentSlot{App: "b", Source: shared, Write: true}},
		Connection{Plug: "system-observe", Interface: "system-observe"},
		Connection{Plug: "fan", Interface: "pwm", Slot: "gadget:fan",
			Gadget: &gadget.Slot{Name: "fan", Interface: "pwm", SlotAttrs: interfaces.SlotAttrs{Chip: intp(0), Number: intp(1)}}},
	)
	pols, err := Resolve(m, 1, launch.User{UID: 70001, GID: 70001}, conns)
	if err != nil {
		t.Fatal(err)
	}
	if err := profiles.Generate(pols, profiles.Options{Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pols {
		for _, f := range []string{profiles.PolicyPath("a", 1, p.Command), profiles.AppArmorPath("a", 1, p.Command)} {
			got, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got = bytes.ReplaceAll(got, []byte(dirs.Root), []byte("ROOT"))
			golden := filepath.Join("testdata", filepath.Base(f))
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff); got:\n%s", f, golden, got)
			}
		}
	}
	if v := pols[2]; v.Command != "web" || !strings.Contains(strings.Join(v.Plugs, ","), "network-bind") {
		t.Errorf("got %s with plugs %q, want web with network-bind", v.Command, v.Plugs)
	}
}
