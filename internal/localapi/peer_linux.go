package localapi

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// PeerOf returns the credentials that the kernel recorded for the process
// that connected a unix socket (SO_PEERCRED).
func PeerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if credErr != nil {
		return Peer{}, os.NewSyscallError("getsockopt SO_PEERCRED", credErr)
	}
	return Peer{UID: cred.Uid, PID: cred.Pid}, nil
}
