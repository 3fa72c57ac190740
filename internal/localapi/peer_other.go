//go:build !linux

package localapi

import (
	"errors"
	"net"
)

// PeerOf returns the credentials of a unix socket's peer, which only Linux
// gives here: elsewhere no peer is known, and the APIs refuse everyone.
func PeerOf(c net.Conn) (Peer, error) {
	return Peer{}, errors.New("cannot tell who connects: peer credentials need Linux")
}
