// Package localapi is what the agent's two HTTP APIs on unix sockets
// share, the admin API (agent/api) and the in-app API (agent/ctl): who is
// at the other end of a connection, as the kernel says (SO_PEERCRED), and
// how many connections each user and all users together may hold, so that
// no local user can take every file descriptor of the agent by opening
// connections and keeping them.
package localapi

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits bound the connections that a socket holds open.
type Limits struct {
	// PerUID is how many connections one user (root included) may hold.
	PerUID int
	// Total is how many connections all users together may hold.
	Total int
	// RootReserve of the Total are kept for root: other users are refused
	// once Total-RootReserve are open, so the admin can always get in.
	RootReserve int
}

// Options say how a Listener limits and refuses connections.
type Options struct {
	Limits Limits
	// Name is what the refusals call the socket: "the paddock agent".
	Name string
	// Refusal returns the body of the 503 answer to a refused connection,
	// which says why: a JSON error of the API.
	Refusal func(why string) []byte
	// Log gets a warning about refused connections, at most one every
	// refuseLogEvery; LogName names them there: "API".
	Log     *slog.Logger
	LogName string
	// PeerOf returns the peer of a connection; nil is the kernel's
	// credentials of a unix socket's peer (PeerOf). Tests swap it.
	PeerOf func(net.Conn) (Peer, error)
}

// refuseLogEvery is the least time between two log lines about refused connections.
const refuseLogEvery = 10 * time.Second

// Listener accepts connections within Limits and closes the others at
// once, with a short answer saying why; Accept never waits for a slot, so
// a user at the limit delays nobody else.
type Listener struct {
	net.Listener
	o Options

	mu      sync.Mutex
	perUID  map[uint32]int
	total   int
	refused int       // since the last log line
	logged  time.Time // when refusals were last logged
}

// NewListener returns a Listener that accepts the connections of l within o.Limits.
func NewListener(l net.Listener, o Options) *Listener {
	if o.PeerOf == nil {
		o.PeerOf = PeerOf
	}
	return &Listener{Listener: l, o: o, perUID: map[uint32]int{}}
}

// Accept returns the next connection within the limits, a *Conn that
// carries its peer and gives its slot back when closed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := l.o.PeerOf(c)
		if err != nil {
			l.refuse(c, fmt.Sprintf("cannot tell who connects: %v", err))
			continue
		}
		if why := l.admit(p.UID); why != "" {
			l.refuse(c, why)
			continue
		}
		return &Conn{Conn: c, Peer: p, release: func() { l.release(p.UID) }}, nil
	}
}

// admit takes a slot for uid, or says why there is none.
func (l *Listener) admit(uid uint32) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.o.Limits
	total := lim.Total
	if uid != 0 {
		total -= lim.RootReserve
	}
	switch {
	case l.perUID[uid] >= lim.PerUID:
		return fmt.Sprintf("too many connections to %s from uid %d (at most %d): close some and try again", l.o.Name, uid, lim.PerUID)
	case l.total >= total && uid != 0 && lim.RootReserve > 0:
		return fmt.Sprintf("too many connections to %s (%d open, the others kept for root): try again later", l.o.Name, l.total)
	case l.total >= total:
		return fmt.Sprintf("too many connections to %s (%d open): try again later", l.o.Name, l.total)
	}
	l.perUID[uid]++
	l.total++
	return ""
}

func (l *Listener) release(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUID[uid]--; l.perUID[uid] <= 0 {
		delete(l.perUID, uid)
	}
	l.total--
}

// Open returns how many connections uid holds, and all users together.
func (l *Listener) Open(uid uint32) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perUID[uid], l.total
}

// refuse answers a connection over the limits with a 503 and closes it. The
// answer fits the empty socket buffer of a new connection, and the write
// has a deadline anyway, so a peer that never reads cannot hold Accept.
func (l *Listener) refuse(c net.Conn, why string) {
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	body := l.o.Refusal(why)
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	c.Close()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= refuseLogEvery {
		l.o.Log.Warn("refused "+l.o.LogName+" connections", "count", l.refused, "last", why)
		l.refused, l.logged = 0, now
	}
}

// Conn is an accepted connection with its peer.
type Conn struct {
	net.Conn
	Peer    Peer
	once    sync.Once
	release func()
}

// Close closes the connection and gives its slot back, once.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
