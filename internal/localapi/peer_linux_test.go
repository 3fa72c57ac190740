package localapi

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestConnContext reads the peer of a real unix socket's connection, as
// the kernel gives it; any other connection has no known peer.
func TestConnContext(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	p, ok := PeerFrom(ConnContext(context.Background(), server))
	if want := (Peer{UID: uint32(os.Getuid()), PID: int32(os.Getpid())}); !ok || p != want {
		t.Errorf("over a unix socket: got %+v, %v, want %+v, true", p, ok, want)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p, ok := PeerFrom(ConnContext(context.Background(), a)); ok {
		t.Errorf("over a pipe: got %+v, want none", p)
	}
}
