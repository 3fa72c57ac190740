package netmgr

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzLeaseOf feeds DHCP answers, as a server on the link could send them,
// to leaseOf: it never panics, and a lease it accepts puts a unicast
// address of a subnet no wider than /8 on the link, a gateway inside that
// subnet, and ends after it starts.
func FuzzLeaseOf(f *testing.F) {
	for _, mods := range [][]dhcpv4.Modifier{
		{dhcpv4.WithYourIP(net.ParseIP("10.0.2.15")), dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(net.ParseIP("10.0.2.2")),
			dhcpv4.WithDNS(net.ParseIP("10.0.2.3")), dhcpv4.WithLeaseTime(3600)},
		{dhcpv4.WithYourIP(net.ParseIP("192.168.1.20")), dhcpv4.WithLeaseTime(0)},
		{dhcpv4.WithYourIP(net.ParseIP("127.0.0.1"))},
	} {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}, mods...)...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.ToBytes())
	}
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		l, err := leaseOf(m, now)
		if err != nil {
			return
		}
		if !unicast(l.addr.Addr()) || l.addr.Bits() < minPrefix || l.addr.Bits() > 32 {
			t.Fatalf("accepted the address %s", l.addr)
		}
		if l.gw.IsValid() && (!unicast(l.gw) || !l.addr.Masked().Contains(l.gw) || l.gw == l.addr.Addr()) {
			t.Fatalf("accepted the gateway %s for %s", l.gw, l.addr)
		}
		if !l.expiry.After(now) || l.renew.Before(now.Add(minRenew)) {
			t.Fatalf("got a lease from %v renewed at %v ending at %v", now, l.renew, l.expiry)
		}
	})
}
