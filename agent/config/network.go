package config

import (
	"net/netip"
	"regexp"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/yamlstrict"
)

// MaxDNS bounds the name servers of an interface: the C library reads
// three from resolv.conf.
const MaxDNS = 3

var ifnameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`) })

// Network says how the agent brings the device's network up, in the
// appliance only (see agent/netmgr):
//
//	network: {eth0: dhcp}
//	network: {eth0: {address: 192.168.1.20/24, gateway: 192.168.1.1, dns: [192.168.1.1]}}
//	network: none
//
// Without the section the agent runs DHCP on every wired ethernet
// interface; with it, only on the interfaces it names, and "none" leaves
// the network alone.
type Network struct {
	// Set says that agent.yaml has a network section: only the interfaces
	// it names are brought up.
	Set bool
	// Interfaces maps each interface named to its setting.
	Interfaces map[string]Interface
}

// Interface is the setting of one interface: DHCP, or a static address.
type Interface struct {
	DHCP bool `json:"dhcp,omitempty"`
	// Address is the static address and prefix, such as 192.168.1.20/24.
	Address netip.Prefix `json:"address,omitzero"`
	// Gateway is the default route's next hop, or none.
	Gateway netip.Addr `json:"gateway,omitzero"`
	// DNS are the name servers.
	DNS []netip.Addr `json:"dns,omitempty"`
}

// None reports whether the agent leaves the network alone.
func (n Network) None() bool { return n.Set && len(n.Interfaces) == 0 }

// UnmarshalYAML parses the network section strictly: "none", or a mapping
// of interface names to "dhcp" or {address, gateway, dns}.
func (n *Network) UnmarshalYAML(v *yaml.Node) error {
	p := yamlstrict.New("agent.yaml")
	*n = Network{Set: true}
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		if s, err := p.Str(v, "network"); err != nil || s != "none" {
			return p.Errorf(v, "network", "want none, or a mapping of interfaces to dhcp or {address, gateway, dns}")
		}
		return nil
	}
	if v.Tag == "!!null" {
		return nil
	}
	n.Interfaces = map[string]Interface{}
	return p.Fields(v, "network", nil, func(name, field string, _, val *yaml.Node) error {
		if !ifnameRe().MatchString(name) || name == "lo" {
			return p.Errorf(val, field, "want an interface name such as eth0 (letters, digits, dots, dashes and underscores, at most 15; not lo)")
		}
		i, err := parseInterface(p, field, val)
		n.Interfaces[name] = i
		return err
	})
}

func parseInterface(p *yamlstrict.Parser, field string, v *yaml.Node) (Interface, error) {
	var i Interface
	if v.Kind == yaml.ScalarNode {
		if s, err := p.Str(v, field); err != nil || s != "dhcp" {
			return i, p.Errorf(v, field, "want dhcp, or {address: ADDRESS/PREFIX, gateway: ADDRESS, dns: [ADDRESS...]}")
		}
		i.DHCP = true
		return i, nil
	}
	err := p.Fields(v, field, []string{"address", "gateway", "dns"}, func(key, f string, _, val *yaml.Node) error {
		var err error
		switch key {
		case "address":
			i.Address, err = parseAddr(p, f, val, netip.ParsePrefix, "an address with its prefix length, such as 192.168.1.20/24")
		case "gateway":
			i.Gateway, err = parseAddr(p, f, val, netip.ParseAddr, "an address such as 192.168.1.1")
		case "dns":
			err = p.Seq(val, f, func(_ int, f string, val *yaml.Node) error {
				a, err := parseAddr(p, f, val, netip.ParseAddr, "an address such as 192.168.1.1")
				i.DNS = append(i.DNS, a)
				return err
			})
			if err == nil && len(i.DNS) > MaxDNS {
				err = p.Errorf(val, f, "at most %d name servers", MaxDNS)
			}
		}
		return err
	})
	if err != nil {
		return i, err
	}
	return i, checkStatic(p, field, i)
}

func checkStatic(p *yamlstrict.Parser, field string, i Interface) error {
	switch {
	case !i.Address.IsValid():
		return p.FieldErrorf(field, "a static setting needs an address, such as 192.168.1.20/24 (or write dhcp)")
	case i.Address.Addr().IsUnspecified() || i.Address.Addr().IsMulticast() || i.Address.Addr().IsLoopback():
		return p.FieldErrorf(field+".address", "%s is not an address for an interface", i.Address)
	case i.Gateway.IsValid() && (i.Gateway.Is4() != i.Address.Addr().Is4() || !i.Address.Masked().Contains(i.Gateway) || i.Gateway == i.Address.Addr()):
		return p.FieldErrorf(field+".gateway", "%s is not another address in %s", i.Gateway, i.Address.Masked())
	}
	return nil
}

// parseAddr parses a scalar with parse; want says what it should be.
func parseAddr[T interface{ IsValid() bool }](p *yamlstrict.Parser, field string, v *yaml.Node, parse func(string) (T, error), want string) (T, error) {
	var zero T
	s, err := p.Str(v, field)
	if err != nil {
		return zero, err
	}
	a, err := parse(s)
	if err != nil || !a.IsValid() {
		return zero, p.Errorf(v, field, "invalid %q: want %s", s, want)
	}
	return a, nil
}

// Names returns the names of the interfaces in the section, sorted.
func (n Network) Names() []string {
	var names []string
	for name := range n.Interfaces {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
