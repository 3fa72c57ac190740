package localapi

import (
	"context"
	"net"
)

// Peer is who is at the other end of a connection, as the kernel says.
type Peer struct {
	UID uint32
	PID int32
}

type peerKey struct{}

// ConnContext is the ConnContext of an http.Server: it stores the peer of
// a connection in the context of its requests, the peer that a Listener
// read, or that of a plain unix socket's connection.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*Conn); ok {
		return WithPeer(ctx, pc.Peer)
	}
	p, err := PeerOf(c)
	if err != nil {
		return ctx
	}
	return WithPeer(ctx, p)
}

// WithPeer returns ctx carrying p, as ConnContext stores it.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFrom returns the peer that ConnContext stored, if any.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}
