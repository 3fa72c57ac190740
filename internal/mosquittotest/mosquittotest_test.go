package mosquittotest

import (
	"net"
	"strings"
	"testing"
)

func TestStartRestart(t *testing.T) {
	b := Start(t)
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Errorf("got URL %q, want tcp://127.0.0.1:PORT", b.URL())
	}
	b.Kill()
	if c, err := net.Dial("tcp", b.URL()[len("tcp://"):]); err == nil {
		c.Close()
		t.Error("the broker still answers after Kill")
	}
	b.Restart()
	c, err := net.Dial("tcp", b.URL()[len("tcp://"):])
	if err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	c.Close()
}
