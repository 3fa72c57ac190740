package localapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeListener hands out the server ends of pipes whose peer uid the test
// chooses, for the limiter's logic; TestConnectionLimitsOverSocket runs it
// with uids from the kernel.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

type fakeConn struct {
	net.Conn
	uid uint32
}

func newFakeListener() *fakeListener {
	return &fakeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { close(l.closed); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

func fakePeer(c net.Conn) (Peer, error) {
	if fc, ok := c.(*fakeConn); ok {
		return Peer{UID: fc.uid}, nil
	}
	return Peer{}, errors.New("not a fake connection")
}

// refusal is the body of a test's refusals: the reason in JSON.
func refusal(why string) []byte {
	b, _ := json.Marshal(map[string]string{"message": why})
	return b
}

// TestLimitListener pins issue 9 item 3 in the limiter's logic: the API
// accepted every connection, so one user could hold them all. Each uid gets
// at most PerUID, everyone together Total, of which RootReserve only root;
// a connection over the limits is answered 503 and closed while Accept goes
// on to the next; a closed connection gives its slot back.
func TestLimitListener(t *testing.T) {
	fl := newFakeListener()
	ll := NewListener(fl, Options{
		Limits:  Limits{PerUID: 2, Total: 5, RootReserve: 1},
		Name:    "the test socket",
		Refusal: refusal,
		Log:     slog.New(slog.DiscardHandler),
		LogName: "test",
		PeerOf:  fakePeer,
	})
	defer ll.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// dial connects as uid and reports whether the connection was accepted;
	// a refused one must come with a 503 saying why.
	var held []net.Conn
	dial := func(uid uint32) (bool, string) {
		t.Helper()
		client, server := net.Pipe()
		fl.conns <- &fakeConn{Conn: server, uid: uid}
		select {
		case c := <-accepted:
			held = append(held, c)
			client.Close()
			return true, ""
		case <-time.After(20 * time.Millisecond):
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			t.Fatalf("uid %d: neither accepted nor answered: %v", uid, err)
		}
		defer resp.Body.Close()
		var e struct{ Message string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("uid %d: cannot decode the refusal: %v", uid, err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusServiceUnavailable || ct != "application/json" {
			t.Errorf("uid %d: got %d %s, want 503 application/json", uid, resp.StatusCode, ct)
		}
		return false, e.Message
	}
	steps := []struct {
		uid  uint32
		ok   bool
		want string // in the refusal
	}{
		{1000, true, ""},
		{1000, true, ""},
		{1000, false, "from uid 1000 (at most 2)"},
		{1001, true, ""},
		{1002, true, ""},                   // 4 open: the last slot is root's
		{1003, false, "kept for root"},     // not for others
		{0, true, ""},                      // root gets in
		{0, false, "too many connections"}, // Total reached
	}
	for i, s := range steps {
		ok, msg := dial(s.uid)
		if ok != s.ok || !strings.Contains(msg, s.want) {
			t.Errorf("step %d, uid %d: got accepted %v (%q), want %v (%q)", i, s.uid, ok, msg, s.ok, s.want)
		}
	}
	if n, total := ll.Open(1000); n != 2 || total != 5 {
		t.Errorf("got %d open for uid 1000, %d in all, want 2 and 5", n, total)
	}
	// Closing gives the slot back, once even if closed twice.
	held[0].Close()
	held[0].Close()
	if n, total := ll.Open(1000); n != 1 || total != 4 {
		t.Errorf("after a close: got %d open for uid 1000, %d in all, want 1 and 4", n, total)
	}
	held[2].Close() // uid 1001: now a slot is free for others than root
	if ok, msg := dial(1000); !ok {
		t.Errorf("uid 1000 after closing one: got refused (%s), want accepted", msg)
	}
	// A peer that cannot be identified is refused.
	client, server := net.Pipe()
	defer client.Close()
	fl.conns <- server
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(client), nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unknown peer: got %v, %v, want a 503", resp, err)
	}
	for _, c := range held {
		c.Close()
	}
}

// TestAdmitWithoutReserve checks the refusals of a socket that keeps no
// slots for root (the in-app socket's): once Total are open, everyone is
// refused, and the refusal does not speak of root.
func TestAdmitWithoutReserve(t *testing.T) {
	ll := NewListener(newFakeListener(), Options{Limits: Limits{PerUID: 2, Total: 3}, Name: "the test socket"})
	steps := []struct {
		uid  uint32
		want string // the refusal, "" for admitted
	}{
		{1000, ""},
		{1000, ""},
		{1000, "too many connections to the test socket from uid 1000 (at most 2): close some and try again"},
		{0, ""},
		{1001, "too many connections to the test socket (3 open): try again later"},
		{0, "too many connections to the test socket (3 open): try again later"},
	}
	for i, s := range steps {
		if got := ll.admit(s.uid); got != s.want {
			t.Errorf("step %d, uid %d: got %q, want %q", i, s.uid, got, s.want)
		}
	}
}
