package policy

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/denials"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/ota/manifest"
)

const appYAML = `name: hello
version: "2.0"
apps:
  hello:
    command: bin/hello --loud
    plugs: [network, hardware-observe]
    limits: {memory: 64M, pids: 10, cpu-percent: 50}
  serve:
    command: bin/serve
    plugs: [network-bind, serial-port, no-such-interface]
  quiet:
    command: bin/quiet
`

func resolve(t *testing.T, yaml string, user launch.User) map[string]*profiles.Policy {
	t.Helper()
	m, err := manifest.Parse([]byte(yaml), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	pols, err := Resolve(m, 3, user, AutoConnections(m))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*profiles.Policy{}
	for _, p := range pols {
		out[p.Command] = p
	}
	return out
}

func TestResolve(t *testing.T) {
	pols := resolve(t, appYAML, launch.User{UID: 70001, GID: 70001})
	hello, serve, quiet := pols["hello"], pols["serve"], pols["quiet"]
	if hello == nil || serve == nil || quiet == nil || len(pols) != 3 {
		t.Fatalf("got policies %v, want hello, serve and quiet", pols)
	}
	if !hello.HostNetwork || !slices.Equal(hello.Mounts, []profiles.Mount{{Source: "/sys", Target: "/sys"}}) {
		t.Errorf("hello: got host network %v mounts %v, want the host's network and /sys", hello.HostNetwork, hello.Mounts)
	}
	if !slices.Equal(hello.Exec, []string{"bin/hello", "--loud"}) || hello.UID != 70001 || hello.Root {
		t.Errorf("hello: got exec %q uid %d root %v", hello.Exec, hello.UID, hello.Root)
	}
	if hello.Limits != (profiles.Limits{MemoryMax: 64 << 20, PidsMax: 10, CPUPercent: 50}) {
		t.Errorf("hello: got limits %+v", hello.Limits)
	}
	env := strings.Join(hello.Env, "\n")
	for _, want := range []string{"APP=/apps/hello/3", "APP_DATA=/var/lib/paddock/data/hello/3", "APP_VERSION=2.0", "APP_LABEL=paddock.hello.hello"} {
		if !strings.Contains(env, want) {
			t.Errorf("hello: environment lacks %s:\n%s", want, env)
		}
	}
	// serial-port waits for a hardware slot and a connection; an unknown
	// interface gives nothing.
	if !serve.HostNetwork || len(serve.Mounts) != 0 || !slices.Equal(serve.Plugs, []string{"network-bind"}) {
		t.Errorf("serve: got host network %v mounts %v plugs %v, want the network only", serve.HostNetwork, serve.Mounts, serve.Plugs)
	}
	if quiet.HostNetwork || len(quiet.Mounts) != 0 || len(quiet.Plugs) != 0 || !slices.Equal(quiet.Devices, profiles.DefaultDevices()) {
		t.Errorf("quiet: got %+v, want the default policy", quiet)
	}
	if quiet.Seccomp.Devmode || quiet.AppArmor.Complain {
		t.Error("a strict app resolved to devmode")
	}
	dev := resolve(t, strings.Replace(appYAML, "version: \"2.0\"\n", "version: \"2.0\"\nconfinement: devmode\n", 1), launch.User{Root: true})
	if p := dev["quiet"]; !p.Seccomp.Devmode || !p.AppArmor.Complain || !p.Root || p.UID != 0 {
		t.Errorf("devmode app granted root: got %+v", p)
	}
}

// TestResolveIsDeterministic checks that resolving the same app twice
// gives the same bytes: the agent rewrites a policy file, and launches
// replace their kept sandbox, only when the policy really changed.
func TestResolveIsDeterministic(t *testing.T) {
	a := resolve(t, appYAML, launch.User{UID: 70001, GID: 70001})
	for range 5 {
		b := resolve(t, appYAML, launch.User{UID: 70001, GID: 70001})
		for cmd, p := range a {
			x, _ := p.Encode()
			y, _ := b[cmd].Encode()
			if !bytes.Equal(x, y) {
				t.Fatalf("%s: two resolutions differ:\n%s\n%s", cmd, x, y)
			}
		}
	}
}

// TestDenialHints checks that 'paddock debug denials' gets the hints it
// gave before the catalog held them.
func TestDenialHints(t *testing.T) {
	c := DenialCatalog()
	aa := func(p string) denials.Denial {
		return denials.Denial{Kind: "apparmor", Label: "paddock.hello.hello", Operation: "open", Path: p}
	}
	sc := func(name string) denials.Denial {
		return denials.Denial{Kind: "seccomp", Label: "paddock.hello.hello", Syscall: name}
	}
	tests := []struct {
		d    denials.Denial
		plug string
	}{
		{aa("/dev/ttyUSB0"), "serial-port"},
		{aa("/dev/ttymxc1"), "serial-port"},
		{aa("/dev/gpiochip0"), "gpio"},
		{aa("/sys/class/gpio/gpio17/value"), "gpio"},
		{aa("/sys/devices/platform/soc/gpio/x"), "gpio"},
		{aa("/dev/i2c-1"), "i2c"},
		{aa("/sys/class/i2c-dev/i2c-1/name"), "i2c"},
		{aa("/dev/spidev0.0"), "spi"},
		{aa("/sys/class/pwm/pwmchip0/export"), "pwm"},
		{aa("/dev/video0"), ""},
		{denials.Denial{Kind: "apparmor", Operation: "create", Family: "inet"}, "network"},
		{denials.Denial{Kind: "apparmor", Operation: "bind", Family: "inet6"}, "network-bind"},
		{denials.Denial{Kind: "apparmor", Operation: "capable", Capability: "net_bind_service"}, "network-bind"},
		{denials.Denial{Kind: "apparmor", Operation: "capable", Capability: "sys_admin"}, ""},
		{sc("socket"), "network"},
		{sc("recvmmsg"), "network"},
		{sc("accept4"), "network-bind"},
		{sc("reboot"), ""},
	}
	for _, tt := range tests {
		if got := c.Hint(tt.d); got != tt.plug {
			t.Errorf("hint for %+v: got %q, want %q", tt.d, got, tt.plug)
		}
	}
}
