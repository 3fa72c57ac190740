// Package mosquittotest starts a real mosquitto broker on a loopback port
// for tests, and stops it (by its PID) when the test ends.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// Broker is a mosquitto started for one test.
type Broker struct {
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts mosquitto on 127.0.0.1 with persistence in a temporary
// directory, or skips the test when mosquitto is not installed.
func Start(t testing.TB) *Broker {
	t.Helper()
	if _, err := exec.LookPath(bin()); err != nil {
		t.Skip("needs mosquitto (make deps installs it)")
	}
	b := &Broker{t: t, dir: t.TempDir(), port: freePort(t)}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 100000\nmax_inflight_messages 0\nset_tcp_nodelay true\n", b.port, b.dir)
	if err := os.WriteFile(filepath.Join(b.dir, "mosquitto.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

func bin() string {
	if _, err := exec.LookPath("mosquitto"); err == nil {
		return "mosquitto"
	}
	return "/usr/sbin/mosquitto"
}

// URL is the broker's address for clients, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", b.port) }

// Port is the broker's port.
func (b *Broker) Port() int { return b.port }

// Restart starts the broker again (or for the first time) on the same port
// with the same persistence, and waits until it accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	cmd := exec.Command(bin(), "-c", filepath.Join(b.dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("cannot start mosquitto: %v", err)
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(b.done)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.port)); err == nil {
			c.Close()
			return
		}
	}
	b.t.Fatalf("mosquitto did not listen on port %d within 10s", b.port)
}

// Stop stops the broker (SIGTERM, so that it saves its persistent state),
// if it runs.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	testutil.Terminate(b.cmd.Process, b.done, 10*time.Second)
	b.cmd = nil
}

// Kill stops the broker abruptly (SIGKILL), as a crash would.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
