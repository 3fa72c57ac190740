package netmgr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// fakeSystem records what the manager does; leases answers each request
// in turn (the last one again when they run out).
type fakeSystem struct {
	mu       sync.Mutex
	calls    []string
	leases   []*dhcpv4.DHCPv4
	requests int
	renewErr error
	upErr    error
}

var _ system = (*fakeSystem)(nil)

func (f *fakeSystem) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeSystem) history() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeSystem) up(_ context.Context, name string) error {
	f.record("up " + name)
	return f.upErr
}

func (f *fakeSystem) request(_ context.Context, name string) (*nclient4.Lease, error) {
	f.mu.Lock()
	ack := f.leases[min(f.requests, len(f.leases)-1)]
	f.requests++
	f.mu.Unlock()
	f.record("request " + name)
	return &nclient4.Lease{Offer: ack, ACK: ack}, nil
}

func (f *fakeSystem) renew(_ context.Context, name string, l *nclient4.Lease) (*nclient4.Lease, error) {
	f.record("renew " + name)
	if f.renewErr != nil {
		return nil, f.renewErr
	}
	return l, nil
}

func (f *fakeSystem) apply(name string, addr, old netip.Prefix, gw netip.Addr) error {
	f.record("apply " + name + " " + addr.String() + " old " + old.String() + " via " + gw.String())
	return nil
}

func (f *fakeSystem) remove(name string, addr netip.Prefix) error {
	f.record("remove " + name + " " + addr.String())
	return nil
}

// ack is a DHCP server's answer: ip in 10.0.2.0/24 for lease.
func ack(t *testing.T, ip string, lease time.Duration) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.ParseIP(ip)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(net.ParseIP("10.0.2.2")),
		dhcpv4.WithDNS(net.ParseIP("10.0.2.3")), dhcpv4.WithServerIP(net.ParseIP("10.0.2.2")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.0.2.2"))), dhcpv4.WithLeaseTime(uint32(lease/time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newTestManager returns a manager over sys for the interfaces of conf,
// in a test root, its log in the returned buffer; fast backoff.
func newTestManager(t *testing.T, sys system, conf config.Network) (*Manager, *syncBuffer) {
	root := dirstest.SetRoot(t)
	var log syncBuffer
	m := New(manager.Env{Log: slog.New(slog.NewTextHandler(&log, nil))})
	m.sys = sys
	m.backoff = func(int) time.Duration { return 100 * time.Millisecond }
	m.Configure(conf, "")
	t.Cleanup(m.Stop)
	testRoot = root
	return m, &log
}

// testRoot is the root of the last newTestManager.
var testRoot string

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func dhcpOn(names ...string) config.Network {
	n := config.Network{Set: true, Interfaces: map[string]config.Interface{}}
	for _, name := range names {
		n.Interfaces[name] = config.Interface{DHCP: true}
	}
	return n
}

func iface(m *Manager, name string) apitypes.NetworkInterface {
	for _, i := range m.Status().Interfaces {
		if i.Name == name {
			return i
		}
	}
	return apitypes.NetworkInterface{}
}

func TestDHCPAppliesLeaseAndResolvConf(t *testing.T) {
	f := &fakeSystem{leases: []*dhcpv4.DHCPv4{ack(t, "10.0.2.15", time.Hour)}}
	m, log := newTestManager(t, f, dhcpOn("eth0"))
	if err := m.Ensure(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the lease applied", 10*time.Second, func() bool { return iface(m, "eth0").Address != "" })
	got := iface(m, "eth0")
	if got.Address != "10.0.2.15/24" || got.Gateway != "10.0.2.2" || !reflect.DeepEqual(got.DNS, []string{"10.0.2.3"}) || got.Server != "10.0.2.2" || got.Error != "" {
		t.Errorf("got %+v, want 10.0.2.15/24 via 10.0.2.2, dns 10.0.2.3, from 10.0.2.2", got)
	}
	if d := time.Until(got.LeaseExpiry); d < 59*time.Minute || d > time.Hour {
		t.Errorf("got the lease ending in %v, want an hour", d)
	}
	if d := got.LeaseExpiry.Sub(got.Renew); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("got renewal %v before the end, want half the lease", d)
	}
	want := []string{"up eth0", "request eth0", "apply eth0 10.0.2.15/24 old invalid Prefix via 10.0.2.2"}
	if h := f.history(); !reflect.DeepEqual(h, want) {
		t.Errorf("got calls %q, want %q", h, want)
	}
	b, err := os.ReadFile(filepath.Join(testRoot, dirs.ResolvConfRel))
	if err != nil || !strings.Contains(string(b), "\nnameserver 10.0.2.3\n") {
		t.Errorf("got resolv.conf %q (%v), want nameserver 10.0.2.3", b, err)
	}
	if !strings.Contains(log.String(), "network: DHCP lease") || !strings.Contains(log.String(), "address=10.0.2.15/24") {
		t.Errorf("the log does not tell the lease: %s", log)
	}
	// Ensure again starts nothing new.
	m.Ensure()
	time.Sleep(100 * time.Millisecond)
	if h := f.history(); len(h) != 3 {
		t.Errorf("a second Ensure: got calls %q, want the first three only", h)
	}
}

// TestDHCPRenewFailsUntilTheLeaseEnds: a lease whose renewals fail is
// kept until it ends, then its address removed and a new one asked for.
func TestDHCPRenewFailsUntilTheLeaseEnds(t *testing.T) {
	testutil.Replace(t, &minRenew, 10*time.Millisecond)
	f := &fakeSystem{leases: []*dhcpv4.DHCPv4{ack(t, "10.0.2.15", time.Second), ack(t, "10.0.2.16", time.Hour)},
		renewErr: errors.New("no answer")}
	m, log := newTestManager(t, f, dhcpOn("eth0"))
	var ups atomic.Int32
	m.OnUp = func() { ups.Add(1) }
	m.Ensure()
	// OnUp is called just after the status shows the lease: wait for both
	// (checking OnUp as soon as the address showed failed 2 runs in 15 at
	// load 4).
	testutil.WaitFor(t, "the second lease", 10*time.Second, func() bool {
		return iface(m, "eth0").Address == "10.0.2.16/24" && ups.Load() >= 2
	})
	time.Sleep(50 * time.Millisecond)
	if n := ups.Load(); n != 2 {
		t.Errorf("got OnUp called %d times, want twice: once per address", n)
	}
	h := strings.Join(f.history(), "\n")
	renews := strings.Count(h, "renew eth0")
	// At half the second's lease, then every 100 ms until it ends.
	if renews < 2 || renews > 8 {
		t.Errorf("got %d renewals in a second, want about 5: %s", renews, h)
	}
	first := strings.Index(h, "apply eth0 10.0.2.15/24")
	removed := strings.Index(h, "remove eth0 10.0.2.15/24")
	second := strings.Index(h, "apply eth0 10.0.2.16/24")
	if first < 0 || removed < first || second < removed {
		t.Errorf("got calls\n%s\nwant the first address applied, removed at the lease's end, then the second applied", h)
	}
	if !strings.Contains(log.String(), "the lease ended without renewal") {
		t.Errorf("the log does not say the lease ended: %s", log)
	}
	// The error is logged once, not at every attempt.
	if n := strings.Count(log.String(), "no answer"); n != 1 {
		t.Errorf("got the renewal error logged %d times, want once: %s", n, log)
	}
}

// TestDHCPNakAsksAgain: a server that refuses a renewal (NAK) takes the
// address at once; the manager asks for a new lease.
func TestDHCPNakAsksAgain(t *testing.T) {
	testutil.Replace(t, &minRenew, 10*time.Millisecond)
	nak, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystem{leases: []*dhcpv4.DHCPv4{ack(t, "10.0.2.15", 2*time.Second), ack(t, "10.0.2.16", time.Hour)},
		renewErr: &nclient4.ErrNak{Nak: nak}}
	m, _ := newTestManager(t, f, dhcpOn("eth0"))
	m.Ensure()
	testutil.WaitFor(t, "the second lease", 10*time.Second, func() bool { return iface(m, "eth0").Address == "10.0.2.16/24" })
	want := []string{"up eth0", "request eth0", "apply eth0 10.0.2.15/24 old invalid Prefix via 10.0.2.2",
		"up eth0", "renew eth0", "remove eth0 10.0.2.15/24",
		"up eth0", "request eth0", "apply eth0 10.0.2.16/24 old invalid Prefix via 10.0.2.2"}
	if h := f.history(); !reflect.DeepEqual(h, want) {
		t.Errorf("got calls\n%q\nwant\n%q", h, want)
	}
}

// TestFailuresBackOff: a link that does not come up is tried again after
// the backoff, the error shown with the next attempt's time and logged
// once.
func TestFailuresBackOff(t *testing.T) {
	f := &fakeSystem{upErr: errors.New("eth0 has no carrier (is the cable plugged in?)")}
	m, log := newTestManager(t, f, dhcpOn("eth0"))
	var mu sync.Mutex
	var got []int
	m.backoff = func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
		return 200 * time.Millisecond
	}
	m.Ensure()
	time.Sleep(900 * time.Millisecond)
	m.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 || len(got) > 6 || got[0] != 1 || got[1] != 2 {
		t.Errorf("got backoffs for failures %v in 0.9 s with 0.2 s waits, want 1, 2, ... (4 or 5)", got)
	}
	s := iface(m, "eth0")
	if !strings.Contains(s.Error, "no carrier") || s.Retry.IsZero() || s.Address != "" {
		t.Errorf("got status %+v, want the carrier error and a retry time", s)
	}
	if n := strings.Count(log.String(), "no carrier"); n != 1 {
		t.Errorf("got the error logged %d times, want once: %s", n, log)
	}
}

func TestStatic(t *testing.T) {
	f := &fakeSystem{}
	conf := config.Network{Set: true, Interfaces: map[string]config.Interface{"eth1": {Address: netip.MustParsePrefix("192.168.1.20/24"),
		Gateway: netip.MustParseAddr("192.168.1.1"), DNS: []netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("9.9.9.9")}}}}
	m, log := newTestManager(t, f, conf)
	var ups atomic.Int32
	m.OnUp = func() { ups.Add(1) }
	m.Ensure()
	testutil.WaitFor(t, "the static address", 10*time.Second, func() bool { return iface(m, "eth1").Address != "" && ups.Load() >= 1 })
	if n := ups.Load(); n != 1 {
		t.Errorf("got OnUp called %d times, want once", n)
	}
	want := apitypes.NetworkInterface{Name: "eth1", Method: "static", Address: "192.168.1.20/24", Gateway: "192.168.1.1", DNS: []string{"192.168.1.1", "9.9.9.9"}}
	got := iface(m, "eth1")
	got.Since = time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if h := f.history(); len(h) != 2 || h[1] != "apply eth1 192.168.1.20/24 old invalid Prefix via 192.168.1.1" {
		t.Errorf("got calls %q", h)
	}
	b, _ := os.ReadFile(filepath.Join(testRoot, dirs.ResolvConfRel))
	if !strings.HasSuffix(string(b), "nameserver 192.168.1.1\nnameserver 9.9.9.9\n") {
		t.Errorf("got resolv.conf %q", b)
	}
	if !strings.Contains(log.String(), "network: static address") {
		t.Errorf("the log does not tell the address: %s", log)
	}
}

// TestLeftAlone: outside the appliance, or with network: none, the
// manager touches nothing and says why.
func TestLeftAlone(t *testing.T) {
	for _, tt := range []struct {
		name, off string
		conf      config.Network
		why       string
	}{
		{"not the appliance", "not the appliance: the agent runs in the root /tmp/x", config.Network{}, "not the appliance"},
		{"none", "", config.Network{Set: true}, "network: none"},
		{"empty mapping", "", config.Network{Set: true, Interfaces: map[string]config.Interface{}}, "network: none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSystem{}
			m, _ := newTestManager(t, f, config.Network{})
			m.Configure(tt.conf, tt.off)
			if err := m.Ensure(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			st := m.Status()
			if st.Managed || !strings.Contains(st.Why, tt.why) || len(st.Interfaces) != 0 || len(f.history()) != 0 {
				t.Errorf("got %+v and calls %q, want nothing done because %q", st, f.history(), tt.why)
			}
		})
	}
}

// TestConfigureMakesResolvFolder: in the appliance, Configure makes the
// folder of resolv.conf (0755) before any service's sandbox is made, so
// that each sandbox with the host's network can show it (confine/launch);
// outside the appliance it makes nothing.
func TestConfigureMakesResolvFolder(t *testing.T) {
	for _, tt := range []struct {
		name, off string
		want      bool
	}{
		{"the appliance", "", true},
		{"not the appliance", "not the appliance: the agent runs in the root /tmp/x", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := dirstest.SetRoot(t)
			m := New(manager.Env{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			t.Cleanup(m.Stop)
			m.Configure(config.Network{}, tt.off)
			fi, err := os.Stat(filepath.Join(root, dirs.NetRunRel))
			if got := err == nil; got != tt.want {
				t.Fatalf("got the folder made %v (%v), want %v", got, err, tt.want)
			}
			if tt.want && (!fi.IsDir() || fi.Mode().Perm() != 0o755) {
				t.Errorf("got %v, want a folder of mode 0755", fi.Mode())
			}
		})
	}
}

// TestDefaultIsWiredEthernet: without a network section, DHCP runs on the
// wired ethernet interfaces only, also on one that appears later.
func TestDefaultIsWiredEthernet(t *testing.T) {
	f := &fakeSystem{leases: []*dhcpv4.DHCPv4{ack(t, "10.0.2.15", time.Hour)}}
	m, _ := newTestManager(t, f, config.Network{})
	root := testRoot
	link := func(name, typ string, files ...string) {
		d := filepath.Join(root, "sys/class/net", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "type"), []byte(typ+"\n"), 0o644)
		for _, f := range files {
			os.MkdirAll(filepath.Join(d, f), 0o755)
		}
	}
	link("lo", "772")
	link("eth0", "1", "device")
	link("wlan0", "1", "device", "wireless")
	link("veth9", "1")
	link("can0", "280", "device")
	names, err := wiredInterfaces()
	if err != nil || !reflect.DeepEqual(names, []string{"eth0"}) {
		t.Fatalf("got %q, %v, want eth0", names, err)
	}
	m.Ensure()
	link("enp1s0", "1", "device") // a USB adapter plugged in later
	m.Ensure()
	testutil.WaitFor(t, "both leases", 10*time.Second, func() bool {
		return iface(m, "eth0").Address != "" && iface(m, "enp1s0").Address != ""
	})
	if n := len(m.Status().Interfaces); n != 2 {
		t.Errorf("got %d interfaces, want eth0 and enp1s0: %+v", n, m.Status())
	}
}

func TestLeaseOf(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	withMods := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ip := dhcpv4.WithYourIP(net.ParseIP("10.0.2.15"))
	tests := []struct {
		name    string
		ack     *dhcpv4.DHCPv4
		want    lease
		wantErr string
	}{
		{"full", ack(t, "10.0.2.15", 2*time.Hour), lease{addr: netip.MustParsePrefix("10.0.2.15/24"), gw: netip.MustParseAddr("10.0.2.2"),
			dns: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, server: netip.MustParseAddr("10.0.2.2"), renew: now.Add(time.Hour), expiry: now.Add(2 * time.Hour)}, ""},
		{"no mask, no time", withMods(ip), lease{addr: netip.MustParsePrefix("10.0.2.15/32"), renew: now.Add(30 * time.Minute), expiry: now.Add(time.Hour)}, ""},
		{"server's T1", withMods(ip, dhcpv4.WithLeaseTime(600), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRenewTimeValue, []byte{0, 0, 0, 60}))),
			lease{addr: netip.MustParsePrefix("10.0.2.15/32"), renew: now.Add(time.Minute), expiry: now.Add(10 * time.Minute)}, ""},
		{"T1 beyond the lease", withMods(ip, dhcpv4.WithLeaseTime(600), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRenewTimeValue, []byte{0, 0, 0x0e, 0x10}))),
			lease{addr: netip.MustParsePrefix("10.0.2.15/32"), renew: now.Add(5 * time.Minute), expiry: now.Add(10 * time.Minute)}, ""},
		{"router outside the subnet", withMods(ip, dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(net.ParseIP("10.9.9.9"))),
			lease{addr: netip.MustParsePrefix("10.0.2.15/24"), renew: now.Add(30 * time.Minute), expiry: now.Add(time.Hour)}, ""},
		{"a second's lease renews no sooner than minRenew", withMods(ip, dhcpv4.WithLeaseTime(1)),
			lease{addr: netip.MustParsePrefix("10.0.2.15/32"), renew: now.Add(time.Second), expiry: now.Add(time.Second)}, ""},
		{"a lease of 0 s is an hour's", withMods(ip, dhcpv4.WithLeaseTime(0)),
			lease{addr: netip.MustParsePrefix("10.0.2.15/32"), renew: now.Add(30 * time.Minute), expiry: now.Add(time.Hour)}, ""},
		{"no address", withMods(), lease{}, "has no address"},
		// A hostile or broken server: none of these may land on the link.
		{"a loopback address", withMods(dhcpv4.WithYourIP(net.ParseIP("127.0.0.1"))), lease{}, "not a unicast address"},
		{"a multicast address", withMods(dhcpv4.WithYourIP(net.ParseIP("224.0.0.1"))), lease{}, "not a unicast address"},
		{"the broadcast address", withMods(dhcpv4.WithYourIP(net.ParseIP("255.255.255.255"))), lease{}, "not a unicast address"},
		{"a link-local address", withMods(dhcpv4.WithYourIP(net.ParseIP("169.254.1.1"))), lease{}, "not a unicast address"},
		{"a /1 subnet", withMods(ip, dhcpv4.WithNetmask(net.CIDRMask(1, 32))), lease{}, "wider than /8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := leaseOf(tt.ack, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: maxBackoff, 100: maxBackoff} {
		for range 20 {
			if got := backoff(n); got > want || got < want*4/5 {
				t.Errorf("backoff(%d): got %v, want %v less at most a fifth", n, got, want)
			}
		}
	}
}
