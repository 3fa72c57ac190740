package uevent

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// kernelGroup is the netlink multicast group of the kernel's uevents (udev
// re-broadcasts on group 2, which paddock does not listen to).
const kernelGroup = 1

// ErrLost is returned by Next when the socket's buffer overflowed and
// events were lost: the caller should look at the devices again (FromSysfs).
var ErrLost = errors.New("uevents were lost (the receive buffer overflowed)")

// Listener receives the kernel's uevents.
type Listener struct {
	f       *os.File
	rc      syscall.RawConn
	dropped atomic.Int64
	closed  atomic.Bool
}

// Listen opens a NETLINK_KOBJECT_UEVENT socket on the kernel's group.
// Needs root on most kernels only for the larger receive buffer.
func Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("cannot listen to device events: %w", os.NewSyscallError("socket", err))
	}
	// A burst (a hub with many ports) must not overflow the default buffer.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	// The sender's credentials come with each message: only the kernel's count.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot listen to device events: %w", os.NewSyscallError("setsockopt", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot listen to device events: %w", os.NewSyscallError("bind", err))
	}
	f := os.NewFile(uintptr(fd), "uevent")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Listener{f: f, rc: rc}, nil
}

// Next waits for the next valid event from the kernel. Messages from
// another sender, or that Parse refuses, are dropped and counted
// (Dropped). It returns ErrLost after an overflow, and an error wrapping
// os.ErrClosed once Close was called.
func (l *Listener) Next() (*Event, error) {
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := l.rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case err != nil && l.closed.Load():
			return nil, fmt.Errorf("cannot read device events: %w", os.ErrClosed)
		case err != nil:
			return nil, err
		case errors.Is(rerr, unix.ENOBUFS):
			return nil, ErrLost
		case errors.Is(rerr, unix.EINTR):
			continue
		case rerr != nil:
			return nil, os.NewSyscallError("recvmsg", rerr)
		}
		if n > MaxMessage || !fromKernel(from, oob[:oobn]) {
			l.dropped.Add(1)
			continue
		}
		e, err := Parse(buf[:n])
		if err != nil {
			l.dropped.Add(1)
			continue
		}
		return e, nil
	}
}

// fromKernel reports whether a message came from the kernel: netlink port
// 0 and credentials of uid 0.
func fromKernel(from unix.Sockaddr, oob []byte) bool {
	nl, ok := from.(*unix.SockaddrNetlink)
	if !ok || nl.Pid != 0 {
		return false
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return cred.Uid == 0
		}
	}
	return false
}

// Dropped counts the messages Next dropped.
func (l *Listener) Dropped() int64 { return l.dropped.Load() }

// Close stops the listener; a Next waiting returns.
func (l *Listener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}
