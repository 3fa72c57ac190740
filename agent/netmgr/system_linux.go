package netmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	urand "github.com/u-root/uio/rand"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// carrierWait bounds how long up waits for a link's carrier.
const carrierWait = 5 * time.Second

// netlinkSystem works on the network namespace of the calling thread.
type netlinkSystem struct{}

func newSystem() system {
	urandomOnce.Do(useURandom)
	return netlinkSystem{}
}

var urandomOnce sync.Once

// useURandom makes u-root's random reader, which makes the DHCP messages'
// transaction ids (dhcpv4.New), read /dev/urandom. By default it polls
// getrandom(GRND_NONBLOCK) in a busy loop, for up to 2 minutes, until the
// kernel's random generator is ready; the poll never makes it ready, and in
// the QEMU appliance (like on a board without a hardware generator) that
// came long after the agent started: the first VM runs got no lease in 30 s
// and the loop took the CPU from the rest of the agent. A transaction id
// needs no secret randomness. The reader picks its source once, at its
// first read, which this makes (before the agent starts any process, so no
// child sees the variable).
func useURandom() {
	if _, ok := os.LookupEnv("UROOT_NOHWRNG"); !ok {
		os.Setenv("UROOT_NOHWRNG", "1")
		defer os.Unsetenv("UROOT_NOHWRNG")
	}
	var b [4]byte
	urand.ReadContext(context.Background(), b[:])
}

func (netlinkSystem) up(ctx context.Context, name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("cannot find interface %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("cannot set %s up: %w", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, carrierWait)
	defer cancel()
	for {
		// OperUnknown: drivers that do not report a carrier (RFC 2863).
		if s := l.Attrs().OperState; s == netlink.OperUp || s == netlink.OperUnknown {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s has no carrier (is the cable plugged in?)", name)
		case <-time.After(100 * time.Millisecond):
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("cannot find interface %s: %w", name, err)
		}
	}
}

// client opens a DHCP client on name: three tries of 2 s per exchange.
func client(name string) (*nclient4.Client, error) {
	c, err := nclient4.New(name, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, fmt.Errorf("cannot start DHCP on %s: %w", name, err)
	}
	return c, nil
}

// modifiers name the device to the DHCP server by its host name.
func modifiers() []dhcpv4.Modifier {
	if h, err := os.Hostname(); err == nil && h != "" {
		return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptHostName(h))}
	}
	return nil
}

func (netlinkSystem) request(ctx context.Context, name string) (*nclient4.Lease, error) {
	c, err := client(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := c.Request(ctx, modifiers()...)
	if err != nil {
		return nil, fmt.Errorf("no DHCP lease on %s: %w", name, err)
	}
	return l, nil
}

func (netlinkSystem) renew(ctx context.Context, name string, cur *nclient4.Lease) (*nclient4.Lease, error) {
	c, err := client(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := c.Renew(ctx, cur, modifiers()...)
	if err != nil {
		return nil, fmt.Errorf("cannot renew the DHCP lease on %s: %w", name, err)
	}
	return l, nil
}

func (netlinkSystem) apply(name string, addr, old netip.Prefix, gw netip.Addr) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("cannot find interface %s: %w", name, err)
	}
	if old.IsValid() && old != addr {
		if err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipNet(old)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("cannot remove %s from %s: %w", old, name, err)
		}
	}
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("cannot set %s on %s: %w", addr, name, err)
	}
	if gw.IsValid() {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("cannot set the default route via %s on %s: %w", gw, name, err)
		}
	}
	return nil
}

func (netlinkSystem) remove(name string, addr netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("cannot find interface %s: %w", name, err)
	}
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("cannot remove %s from %s: %w", addr, name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
