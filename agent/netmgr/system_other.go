//go:build !linux

package netmgr

import (
	"context"
	"errors"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

var errNotLinux = errors.New("cannot bring the network up: the agent does it on Linux only")

type otherSystem struct{}

func newSystem() system { return otherSystem{} }

func (otherSystem) up(context.Context, string) error { return errNotLinux }
func (otherSystem) request(context.Context, string) (*nclient4.Lease, error) {
	return nil, errNotLinux
}
func (otherSystem) renew(context.Context, string, *nclient4.Lease) (*nclient4.Lease, error) {
	return nil, errNotLinux
}
func (otherSystem) apply(string, netip.Prefix, netip.Prefix, netip.Addr) error { return errNotLinux }
func (otherSystem) remove(string, netip.Prefix) error                          { return errNotLinux }
