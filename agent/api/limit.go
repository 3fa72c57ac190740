package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
)

// Limits bound the connections that the API holds open, so that no local
// user can take every file descriptor of the agent by opening connections
// and keeping them.
type Limits struct {
	// PerUID is how many connections one user (root included) may hold.
	PerUID int
	// Total is how many connections all users together may hold.
	Total int
	// RootReserve of the Total are kept for root: other users are refused
	// once Total-RootReserve are open, so the admin can always get in.
	RootReserve int
}

// DefaultLimits are the limits of the agent's API. A paddock command holds
// one connection; 16 users at their limit fill the share of non-root users.
var DefaultLimits = Limits{PerUID: 32, Total: 512, RootReserve: 32}

// refuseLogEvery is the least time between two log lines about refused connections.
const refuseLogEvery = 10 * time.Second

// limitListener accepts connections within Limits and closes the others at
// once, with a short answer saying why; Accept never waits for a slot, so a
// user at the limit delays nobody else.
type limitListener struct {
	net.Listener
	limits Limits
	// uidOf returns the user at the other end of a connection.
	uidOf func(net.Conn) (uint32, error)
	log   *slog.Logger

	mu      sync.Mutex
	perUID  map[uint32]int
	total   int
	refused int       // since the last log line
	logged  time.Time // when refusals were last logged
}

func newLimitListener(l net.Listener, limits Limits, uidOf func(net.Conn) (uint32, error), log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, limits: limits, uidOf: uidOf, log: log, perUID: map[uint32]int{}}
}

// Accept returns the next connection within the limits, wrapped so that it
// carries its peer's uid and gives its slot back when closed.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := l.uidOf(c)
		if err != nil {
			l.refuse(c, fmt.Sprintf("cannot tell who connects: %v", err))
			continue
		}
		if why := l.admit(uid); why != "" {
			l.refuse(c, why)
			continue
		}
		return &peerConn{Conn: c, uid: uid, release: func() { l.release(uid) }}, nil
	}
}

// admit takes a slot for uid, or says why there is none.
func (l *limitListener) admit(uid uint32) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := l.limits.Total
	if uid != 0 {
		total -= l.limits.RootReserve
	}
	switch {
	case l.perUID[uid] >= l.limits.PerUID:
		return fmt.Sprintf("too many connections to the paddock agent from uid %d (at most %d): close some and try again", uid, l.limits.PerUID)
	case l.total >= total && uid != 0:
		return fmt.Sprintf("too many connections to the paddock agent (%d open, the others kept for root): try again later", l.total)
	case l.total >= total:
		return fmt.Sprintf("too many connections to the paddock agent (%d open): try again later", l.total)
	}
	l.perUID[uid]++
	l.total++
	return ""
}

func (l *limitListener) release(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUID[uid]--; l.perUID[uid] <= 0 {
		delete(l.perUID, uid)
	}
	l.total--
}

// open returns how many connections uid holds, and all users together.
func (l *limitListener) open(uid uint32) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perUID[uid], l.total
}

// refuse answers a connection over the limits with a 503 and closes it. The
// answer fits the empty socket buffer of a new connection, and the write
// has a deadline anyway, so a peer that never reads cannot hold Accept.
func (l *limitListener) refuse(c net.Conn, why string) {
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	res, _ := json.Marshal(apitypes.ErrorResult{Message: why, Kind: "busy"})
	body, _ := json.Marshal(apitypes.Response{Type: "error", StatusCode: http.StatusServiceUnavailable, Result: res})
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	c.Close()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= refuseLogEvery {
		l.log.Warn("refused API connections", "count", l.refused, "last", why)
		l.refused, l.logged = 0, now
	}
}

// peerConn is an accepted connection with the uid of its peer.
type peerConn struct {
	net.Conn
	uid     uint32
	once    sync.Once
	release func()
}

// Close closes the connection and gives its slot back, once.
func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
