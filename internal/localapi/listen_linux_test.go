package localapi

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListen checks the socket Listen makes: in a folder it creates, open
// to every user, replacing a stale socket but not one that is served.
func TestListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "api.sock")
	o := Options{Limits: Limits{PerUID: 1, Total: 1}, Name: "the test socket", Refusal: refusal, Log: slog.New(slog.DiscardHandler)}
	// A stale socket: bound, then its listener closed without removing it.
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	l, err := Listen(sock, o)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o666 {
		t.Errorf("got socket mode %o, want 666", got)
	}
	if _, err := Listen(sock, o); err == nil || !strings.Contains(err.Error(), "another daemon is running") {
		t.Errorf("over a served socket: got %v, want another daemon is running", err)
	}
}
