//go:build !linux

package uevent

import "errors"

// ErrLost is returned by Next when events were lost.
var ErrLost = errors.New("uevents were lost")

// Listener receives the kernel's uevents (Linux only).
type Listener struct{}

// Listen fails: kernel uevents are Linux's.
func Listen() (*Listener, error) {
	return nil, errors.New("cannot listen to device events: kernel uevents need Linux")
}

// Next fails.
func (l *Listener) Next() (*Event, error) { return nil, errors.New("no uevents here") }

// Dropped is 0.
func (l *Listener) Dropped() int64 { return 0 }

// Close does nothing.
func (l *Listener) Close() error { return nil }
