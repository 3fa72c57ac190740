package netmgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/config"
)

const (
	// attemptTimeout bounds one DHCP exchange (three tries of 2 s each).
	attemptTimeout = 8 * time.Second
	// maxBackoff caps the wait between failed attempts.
	maxBackoff = 30 * time.Second
	// recheck is how often a static setting is applied again, in case the
	// link was reset or came back.
	recheck = 30 * time.Second
	// defaultLeaseTime is a lease's time when the server gives none.
	defaultLeaseTime = time.Hour
)

// minRenew keeps a very short lease from renewing in a busy loop.
var minRenew = time.Second

// system is what the manager does to the network: netlink and raw DHCP
// sockets in system_linux.go.
type system interface {
	// up sets the link up and waits, a few seconds at most, for its carrier.
	up(ctx context.Context, name string) error
	// request gets a new lease on name; renew renews l.
	request(ctx context.Context, name string) (*nclient4.Lease, error)
	renew(ctx context.Context, name string, l *nclient4.Lease) (*nclient4.Lease, error)
	// apply sets addr on name, removing old when it is another address,
	// and the default route via gw when gw is valid.
	apply(name string, addr, old netip.Prefix, gw netip.Addr) error
	// remove removes addr from name.
	remove(name string, addr netip.Prefix) error
}

// lease is what a DHCP lease gives, and when.
type lease struct {
	addr   netip.Prefix
	gw     netip.Addr
	dns    []netip.Addr
	server netip.Addr
	renew  time.Time // T1: when to renew
	expiry time.Time
}

// minPrefix is the widest subnet a lease may put on a link: a wider one
// would take much of the internet's addresses for neighbours.
const minPrefix = 8

// unicast reports whether ip can be a host's own address or gateway: not
// loopback, multicast, link-local, the broadcast or an unspecified one.
func unicast(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// leaseOf reads the lease in ack, got at now. A server that gives no
// subnet mask gets /32, no lease time (or 0) an hour; renewal is at the server's
// T1, or half the lease (RFC 2131), but never within a second.
func leaseOf(ack *dhcpv4.DHCPv4, now time.Time) (lease, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return lease{}, errors.New("the DHCP server's answer has no address")
	}
	if !unicast(ip) {
		return lease{}, fmt.Errorf("the DHCP server offered %s, which is not a unicast address (check the server's pool)", ip)
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		if ones, size := m.Size(); size == 32 {
			bits = ones
		}
	}
	if bits < minPrefix {
		return lease{}, fmt.Errorf("the DHCP server offered the subnet %s, wider than /%d (check the server's subnet mask)", netip.PrefixFrom(ip, bits).Masked(), minPrefix)
	}
	l := lease{addr: netip.PrefixFrom(ip, bits)}
	if r := ack.Router(); len(r) > 0 {
		if gw, ok := netip.AddrFromSlice(r[0].To4()); ok && gw != ip && unicast(gw) && l.addr.Masked().Contains(gw) {
			l.gw = gw
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && len(l.dns) < config.MaxDNS {
			l.dns = append(l.dns, a)
		}
	}
	l.server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	total := ack.IPAddressLeaseTime(defaultLeaseTime)
	if total <= 0 {
		total = defaultLeaseTime // a lease of 0 s would be asked for again and again
	}
	t1 := ack.IPAddressRenewalTime(total / 2)
	if t1 <= 0 || t1 >= total {
		t1 = total / 2
	}
	l.expiry, l.renew = now.Add(total), now.Add(max(t1, minRenew))
	return l, nil
}

// backoff is the wait after the nth failed attempt in a row: doubling
// from 1 s to maxBackoff, less up to a fifth at random so that devices
// after a power cut do not all ask at once.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 6 {
		d = min(maxBackoff, time.Second<<(n-1))
	}
	return d - rand.N(d/5+1)
}

// runDHCP keeps a lease on name until the manager stops: it asks for one,
// applies it, renews it at T1, and when renewing fails keeps trying until
// the lease ends, then removes its address and asks for a new one.
func (m *Manager) runDHCP(name string) {
	var cur *nclient4.Lease
	var have lease
	fails := 0
	for {
		if cur != nil && !time.Now().Before(have.expiry) {
			m.drop(name, &have, "the lease ended without renewal")
			cur = nil
		}
		next, err := m.exchange(name, cur)
		var nak *nclient4.ErrNak
		if cur != nil && errors.As(err, &nak) {
			m.drop(name, &have, "the server refused to renew the lease")
			cur = nil
			continue // ask for a new one at once (RFC 2131)
		}
		var wait time.Duration
		if err == nil {
			var l lease
			if l, err = leaseOf(next.ACK, time.Now()); err == nil {
				err = m.sys.apply(name, l.addr, have.addr, l.gw)
			}
			if err == nil {
				m.leased(name, have, l)
				cur, have, fails = next, l, 0
				wait = time.Until(l.renew)
			}
		}
		if err != nil {
			fails++
			wait = m.backoff(fails)
			if cur != nil {
				wait = max(min(wait, time.Until(have.expiry)), minRenew)
			}
			m.failed(name, err, wait)
		}
		if !m.sleep(wait) {
			return
		}
	}
}

// exchange brings the link up and asks for a lease, or renews cur.
func (m *Manager) exchange(name string, cur *nclient4.Lease) (*nclient4.Lease, error) {
	ctx, cancel := context.WithTimeout(m.ctx, attemptTimeout)
	defer cancel()
	if err := m.sys.up(ctx, name); err != nil {
		return nil, err
	}
	if cur == nil {
		return m.sys.request(ctx, name)
	}
	return m.sys.renew(ctx, name, cur)
}

// leased records and logs the lease l that replaced old.
func (m *Manager) leased(name string, old, l lease) {
	changed := l.addr != old.addr || l.gw != old.gw
	if changed {
		m.log.Info("network: DHCP lease", "interface", name, "address", l.addr, "gateway", l.gw, "dns", l.dns, "server", l.server, "until", l.expiry.Format(time.RFC3339))
	} else {
		m.log.Debug("network: DHCP lease renewed", "interface", name, "until", l.expiry.Format(time.RFC3339))
	}
	m.update(name, func(s *apitypes.NetworkInterface) {
		if changed || s.Since.IsZero() {
			s.Since = time.Now()
		}
		s.Address, s.Gateway, s.DNS = l.addr.String(), addrString(l.gw), addrStrings(l.dns)
		s.Server, s.LeaseExpiry, s.Renew = addrString(l.server), l.expiry, l.renew
		s.Error, s.Retry = "", time.Time{}
	})
	if changed && m.OnUp != nil {
		m.OnUp()
	}
}

// drop removes the address of the lease l from name.
func (m *Manager) drop(name string, l *lease, why string) {
	m.log.Warn("network: address removed", "interface", name, "address", l.addr, "why", why)
	if err := m.sys.remove(name, l.addr); err != nil {
		m.log.Warn("network", "interface", name, "err", err)
	}
	*l = lease{}
	m.update(name, func(s *apitypes.NetworkInterface) {
		*s = apitypes.NetworkInterface{Name: s.Name, Method: s.Method, Error: why}
	})
}

// failed records err and logs it when it is not the last error already.
func (m *Manager) failed(name string, err error, wait time.Duration) {
	retry := time.Now().Add(wait)
	m.update(name, func(s *apitypes.NetworkInterface) {
		if s.Error != err.Error() {
			m.log.Warn("network", "interface", name, "err", err, "retry-in", wait.Round(time.Second))
		}
		s.Error, s.Retry = err.Error(), retry
	})
}

// runStatic applies a static setting, and again every recheck.
func (m *Manager) runStatic(name string, c config.Interface) {
	fails := 0
	for {
		ctx, cancel := context.WithTimeout(m.ctx, attemptTimeout)
		err := m.sys.up(ctx, name)
		cancel()
		if err == nil {
			err = m.sys.apply(name, c.Address, netip.Prefix{}, c.Gateway)
		}
		wait := recheck
		if err != nil {
			fails++
			wait = m.backoff(fails)
			m.failed(name, err, wait)
		} else {
			m.static(name, c)
			fails = 0
		}
		if !m.sleep(wait) {
			return
		}
	}
}

// static records and logs, once, that name has its static setting.
func (m *Manager) static(name string, c config.Interface) {
	var up bool
	m.update(name, func(s *apitypes.NetworkInterface) {
		if up = s.Since.IsZero() || s.Error != ""; up {
			m.log.Info("network: static address", "interface", name, "address", c.Address, "gateway", c.Gateway, "dns", c.DNS)
			s.Since = time.Now()
		}
		s.Address, s.Gateway, s.DNS = c.Address.String(), addrString(c.Gateway), addrStrings(c.DNS)
		s.Error, s.Retry = "", time.Time{}
	})
	if up && m.OnUp != nil {
		m.OnUp()
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
