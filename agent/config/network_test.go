package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	static := Interface{Address: netip.MustParsePrefix("192.168.1.20/24"), Gateway: netip.MustParseAddr("192.168.1.1"),
		DNS: []netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("9.9.9.9")}}
	tests := []struct {
		name, yaml string
		want       Network
		wantErr    string
	}{
		{"absent", "device-id: d\n", Network{}, ""},
		{"empty value is absent", "network:\n", Network{}, ""},
		{"none", "network: none\n", Network{Set: true}, ""},
		{"empty mapping", "network: {}\n", Network{Set: true, Interfaces: map[string]Interface{}}, ""},
		{"dhcp", "network: {eth0: dhcp}\n", Network{Set: true, Interfaces: map[string]Interface{"eth0": {DHCP: true}}}, ""},
		{"static", "network:\n  enp0s3: {address: 192.168.1.20/24, gateway: 192.168.1.1, dns: [192.168.1.1, 9.9.9.9]}\n  eth1: dhcp\n",
			Network{Set: true, Interfaces: map[string]Interface{"enp0s3": static, "eth1": {DHCP: true}}}, ""},
		{"static without gateway", "network: {eth0: {address: '10.1.2.3/8'}}\n",
			Network{Set: true, Interfaces: map[string]Interface{"eth0": {Address: netip.MustParsePrefix("10.1.2.3/8")}}}, ""},
		{"ipv6", "network: {eth0: {address: 'fd00::5/64', gateway: 'fd00::1'}}\n",
			Network{Set: true, Interfaces: map[string]Interface{"eth0": {Address: netip.MustParsePrefix("fd00::5/64"), Gateway: netip.MustParseAddr("fd00::1")}}}, ""},
		{"other word", "network: off\n", Network{}, "network: want none"},
		{"a list", "network: [eth0]\n", Network{}, "network: must be a mapping"},
		{"lo", "network: {lo: dhcp}\n", Network{}, "network.lo: want an interface name"},
		{"bad name", "network: {'eth0/../x': dhcp}\n", Network{}, "want an interface name"},
		{"long name", "network: {abcdefghijklmnop: dhcp}\n", Network{}, "at most 15"},
		{"duplicate", "network: {eth0: dhcp, eth0: dhcp}\n", Network{}, "network.eth0: duplicate key"},
		{"other method", "network: {eth0: static}\n", Network{}, "network.eth0: want dhcp, or {address"},
		{"unknown field", "network: {eth0: {address: 10.0.0.2/8, mask: 8}}\n", Network{}, "network.eth0.mask: unknown field"},
		{"no address", "network: {eth0: {gateway: 10.0.0.1}}\n", Network{}, "network.eth0: a static setting needs an address"},
		{"no prefix", "network: {eth0: {address: 10.0.0.2}}\n", Network{}, "network.eth0.address: invalid \"10.0.0.2\""},
		{"bad address", "network: {eth0: {address: 10.0.0.300/8}}\n", Network{}, "network.eth0.address: invalid"},
		{"multicast", "network: {eth0: {address: 224.0.0.1/4}}\n", Network{}, "is not an address for an interface"},
		{"gateway outside", "network: {eth0: {address: 10.0.0.2/24, gateway: 10.0.1.1}}\n", Network{}, "network.eth0.gateway: 10.0.1.1 is not another address in 10.0.0.0/24"},
		{"gateway is the address", "network: {eth0: {address: 10.0.0.2/24, gateway: 10.0.0.2}}\n", Network{}, "is not another address"},
		{"gateway of another family", "network: {eth0: {address: 10.0.0.2/24, gateway: 'fd00::1'}}\n", Network{}, "gateway"},
		{"bad dns", "network: {eth0: {address: 10.0.0.2/24, dns: [resolver]}}\n", Network{}, "network.eth0.dns[0]: invalid \"resolver\""},
		{"dns not a list", "network: {eth0: {address: 10.0.0.2/24, dns: 10.0.0.1}}\n", Network{}, "must be a list"},
		{"too many dns", "network: {eth0: {address: 10.0.0.2/24, dns: [1.1.1.1, 1.0.0.1, 8.8.8.8, 9.9.9.9]}}\n", Network{}, "at most 3 name servers"},
		{"anchor", "network: {eth0: &a dhcp, eth1: *a}\n", Network{}, "anchors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Count(err.Error(), "\n") > 0 {
					t.Errorf("got a multi-line error %q, want one line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Network, tt.want) {
				t.Errorf("got %+v, want %+v", got.Network, tt.want)
			}
		})
	}
}

func TestNetworkNone(t *testing.T) {
	for yaml, want := range map[string]bool{"": false, "network: none\n": true, "network: {}\n": true, "network: {eth0: dhcp}\n": false} {
		c, err := Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Network.None(); got != want {
			t.Errorf("%q: got None() %v, want %v", yaml, got, want)
		}
	}
}

// FuzzParseNetwork feeds agent.yaml's parser arbitrary text, seeded with
// network sections (testdata/network): it must never panic, errors are one
// line, and a network section it accepts names only interfaces and
// settings the agent can apply.
func FuzzParseNetwork(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/network/*.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if err := c.Check(); err != nil {
			t.Fatalf("Parse accepted what Check refuses: %v", err)
		}
		for name, i := range c.Network.Interfaces {
			if !ifnameRe().MatchString(name) || name == "lo" {
				t.Fatalf("accepted the interface name %q", name)
			}
			if !i.DHCP && !i.Address.IsValid() || len(i.DNS) > MaxDNS {
				t.Fatalf("accepted %s: %+v", name, i)
			}
		}
	})
}
