package netmgr

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
)

// newNetns returns a new network namespace, made on a thread of its own
// that ends with it, so that no thread of the test is left in it; closing
// the handle (in t.Cleanup) lets the kernel remove the namespace with its
// links.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		ns, err := netns.New()
		ch <- result{ns, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Skipf("cannot make a network namespace here: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

// inNetns runs fn on a thread in ns, and waits for it.
func inNetns(ns netns.NsHandle, fn func() error) error {
	ch := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in ns
		if err := netns.Set(ns); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// dhcpServer is a DHCP server on one address, 192.0.2.10/24 via
// 192.0.2.1, for leases of leaseTime; it counts the renewals.
type dhcpServer struct {
	leaseTime time.Duration
	mu        sync.Mutex
	renewals  int
}

func (s *dhcpServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
		if !m.ClientIPAddr.IsUnspecified() {
			s.mu.Lock()
			s.renewals++
			s.mu.Unlock()
		}
	default:
		return
	}
	srv := net.ParseIP("192.0.2.1")
	reply, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(net.ParseIP("192.0.2.10")),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(srv), dhcpv4.WithDNS(net.ParseIP("192.0.2.53")),
		dhcpv4.WithServerIP(srv), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
		dhcpv4.WithLeaseTime(uint32(s.leaseTime/time.Second)))
	if err != nil {
		return
	}
	// The client has no address yet: broadcast (a renewal comes from
	// the leased address, and gets its answer there).
	to := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	if !m.ClientIPAddr.IsUnspecified() {
		to = peer.(*net.UDPAddr)
	}
	conn.WriteTo(reply.ToBytes(), to)
}

func (s *dhcpServer) renewed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewals
}

// TestDHCPInNetns runs the manager against a real DHCP server (server4)
// across a veth pair between two network namespaces the test makes; the
// server's end comes up a second after the manager starts (a link and a
// server that come later). The lease's address and default route must be
// on the client's end (read with netlink in its namespace), resolv.conf
// written, and the lease of 2 s renewed before it ends.
func TestDHCPInNetns(t *testing.T) {
	testutil.NeedRoot(t, "make network namespaces")
	srvNS, cliNS := newNetns(t), newNetns(t)
	// The veth pair is made in the server's namespace with its peer in
	// the client's: it never appears in the host's.
	srvH, err := netlink.NewHandleAt(srvNS)
	if err != nil {
		t.Fatal(err)
	}
	defer srvH.Close()
	cliH, err := netlink.NewHandleAt(cliNS)
	if err != nil {
		t.Fatal(err)
	}
	defer cliH.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pdk-srv"}, PeerName: "pdk-dev", PeerNamespace: netlink.NsFd(cliNS)}
	if err := srvH.LinkAdd(veth); err != nil {
		t.Skipf("cannot make a veth pair here: %v", err)
	}
	srvLink, err := srvH.LinkByName("pdk-srv")
	if err != nil {
		t.Fatal(err)
	}
	if err := srvH.AddrAdd(srvLink, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.1/24"))}); err != nil {
		t.Fatal(err)
	}

	m, log := newTestManager(t, newSystem(), dhcpOn("pdk-dev"))
	m.backoff = backoff // the real one
	m.enter = func() error {
		runtime.LockOSThread() // never unlocked: the goroutine's thread ends in cliNS
		return netns.Set(cliNS)
	}
	if err := m.Ensure(); err != nil {
		t.Fatal(err)
	}
	// Later: the server's end comes up, and the server starts.
	time.Sleep(time.Second)
	if err := srvH.LinkSetUp(srvLink); err != nil {
		t.Fatal(err)
	}
	s := &dhcpServer{leaseTime: 2 * time.Second}
	var srv *server4.Server
	if err := inNetns(srvNS, func() (err error) {
		srv, err = server4.NewServer("pdk-srv", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, s.handle)
		return err
	}); err != nil {
		t.Fatalf("cannot start the DHCP server: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })

	testutil.WaitFor(t, "the lease", 30*time.Second, func() bool { return iface(m, "pdk-dev").Address != "" })
	cliLink, err := cliH.LinkByName("pdk-dev")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := cliH.AddrList(cliLink, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "192.0.2.10/24" {
		t.Errorf("got addresses %v (%v) on pdk-dev, want 192.0.2.10/24", addrs, err)
	}
	routes, err := cliH.RouteList(cliLink, netlink.FAMILY_V4)
	var gw string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			gw = r.Gw.String()
		}
	}
	if err != nil || gw != "192.0.2.1" {
		t.Errorf("got routes %v (%v), want the default route via 192.0.2.1", routes, err)
	}
	b, err := os.ReadFile(filepath.Join(testRoot, dirs.ResolvConfRel))
	if err != nil || !strings.Contains(string(b), "nameserver 192.0.2.53\n") {
		t.Errorf("got resolv.conf %q (%v), want nameserver 192.0.2.53", b, err)
	}
	first := iface(m, "pdk-dev")
	if first.Gateway != "192.0.2.1" || first.Server != "192.0.2.1" || time.Until(first.LeaseExpiry) > 2*time.Second {
		t.Errorf("got status %+v, want gateway and server 192.0.2.1, a lease of 2 s", first)
	}
	// The lease of 2 s is renewed after 1 s, before it ends.
	testutil.WaitFor(t, "a renewal", 15*time.Second, func() bool { return s.renewed() > 0 && iface(m, "pdk-dev").LeaseExpiry.After(first.LeaseExpiry) })
	if got := iface(m, "pdk-dev"); got.Address != "192.0.2.10/24" || got.Error != "" {
		t.Errorf("after the renewal: got %+v, want the same address and no error", got)
	}
	if strings.Contains(log.String(), "address removed") {
		t.Errorf("the address was removed: %s", log)
	}
	stopped := time.Now()
	m.Stop()
	if d := time.Since(stopped); d > 3*time.Second {
		t.Errorf("Stop took %v, want at once", d)
	}
	// The host's namespace never saw the links.
	for _, name := range []string{"pdk-dev", "pdk-srv"} {
		var nf netlink.LinkNotFoundError
		if _, err := netlink.LinkByName(name); !errors.As(err, &nf) {
			t.Errorf("the host has a link %s (%v)", name, err)
		}
	}
}
