package ctl

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

// Limits bound the connections the in-app socket holds, like the admin
// API's (agent/api): no app can take the agent's file descriptors.
type Limits struct {
	// PerUID is how many connections one user (one app) may hold.
	PerUID int
	// Total is how many connections all users together may hold.
	Total int
}

// DefaultLimits are the limits of the in-app socket: 'paddock ctl' holds
// one connection for one request.
var DefaultLimits = Limits{PerUID: 8, Total: 256}

// refuseLogEvery is the least time between two log lines about refusals.
const refuseLogEvery = 10 * time.Second

// limitListener accepts connections within Limits, each with its peer's
// credentials, and closes the others at once with a short answer; Accept
// never waits for a slot.
type limitListener struct {
	net.Listener
	limits Limits
	log    *slog.Logger

	mu      sync.Mutex
	perUID  map[uint32]int
	total   int
	refused int
	logged  time.Time
}

func newLimitListener(l net.Listener, limits Limits, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, limits: limits, log: log, perUID: map[uint32]int{}}
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := peerOf(c)
		if err != nil {
			l.refuse(c, fmt.Sprintf("cannot tell who connects: %v", err))
			continue
		}
		if why := l.admit(p.uid); why != "" {
			l.refuse(c, why)
			continue
		}
		return &peerConn{Conn: c, peer: p, release: func() { l.release(p.uid) }}, nil
	}
}

func (l *limitListener) admit(uid uint32) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perUID[uid] >= l.limits.PerUID:
		return fmt.Sprintf("too many connections to the in-app socket from uid %d (at most %d): close some and try again", uid, l.limits.PerUID)
	case l.total >= l.limits.Total:
		return fmt.Sprintf("too many connections to the in-app socket (%d open): try again later", l.total)
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

// refuse answers a connection over the limits with a 503 and closes it;
// the write has a deadline, so a peer that never reads holds nothing.
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
		l.log.Warn("refused in-app connections", "count", l.refused, "last", why)
		l.refused, l.logged = 0, now
	}
}

// peerConn is an accepted connection with its peer.
type peerConn struct {
	net.Conn
	peer    peer
	once    sync.Once
	release func()
}

// Close closes the connection and gives its slot back, once.
func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
