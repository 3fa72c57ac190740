package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestStartStop(t *testing.T) {
	dirstest.SetRoot(t)
	d, err := Start(quiet(), Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	for _, dir := range []string{dirs.PackagesDir, dirs.AssertionsDir, dirs.AppsDir, dirs.DataDir} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("after Start: %s: got %v, want a directory", dir, err)
		}
	}
	apps, err := client.New("").Apps()
	if err != nil || len(apps) != 0 {
		t.Errorf("Apps over the socket: got %v, %v, want none", apps, err)
	}

	// A second agent on the same root must not start, and must leave the
	// first one's socket alone.
	if d2, err := Start(quiet(), Options{}); err == nil {
		d2.Stop()
		t.Errorf("second Start: got success, want an error")
	} else if !strings.Contains(err.Error(), "another paddock daemon") {
		t.Errorf("second Start: got %q, want it to say another paddock daemon runs", err)
	}
	if _, err := client.New("").Apps(); err != nil {
		t.Errorf("first agent after the second Start: %v", err)
	}

	if err := d.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if _, err := os.Lstat(dirs.SocketPath); !os.IsNotExist(err) {
		t.Errorf("socket after Stop: got %v, want it removed", err)
	}
	if _, err := client.New("").Apps(); err == nil || !strings.Contains(err.Error(), "is 'paddock daemon' running?") {
		t.Errorf("Apps after Stop: got %v, want the agent unreachable", err)
	}

	// The lock went with the agent: a new one starts on the same state.
	d, err = Start(quiet(), Options{})
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestStartCorruptState checks that a corrupt state stops the agent with
// the file named, and releases the lock so that a fixed state can start.
func TestStartCorruptState(t *testing.T) {
	dirstest.SetRoot(t)
	if err := os.MkdirAll(dirs.LibDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dirs.StateFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := Start(quiet(), Options{}); err == nil {
		d.Stop()
		t.Fatal("Start on a corrupt state: got success, want an error")
	} else if !strings.Contains(err.Error(), dirs.StateFile) {
		t.Errorf("Start on a corrupt state: got %q, want it to name %s", err, dirs.StateFile)
	}
	if err := os.Remove(dirs.StateFile); err != nil {
		t.Fatal(err)
	}
	d, err := Start(quiet(), Options{})
	if err != nil {
		t.Fatalf("Start after the state was moved aside: %v", err)
	}
	d.Stop()
}

// TestStartSocketInUse checks that an agent which cannot listen releases
// its lock.
func TestStartSocketInUse(t *testing.T) {
	dirstest.SetRoot(t)
	// Something else answers on the socket: a directory in its way.
	if err := os.MkdirAll(dirs.SocketPath+"/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := Start(quiet(), Options{}); err == nil {
		d.Stop()
		t.Fatal("Start with the socket path taken: got success, want an error")
	}
	if err := os.RemoveAll(dirs.SocketPath); err != nil {
		t.Fatal(err)
	}
	d, err := Start(quiet(), Options{})
	if err != nil {
		t.Fatalf("Start once the path is free: %v (the failed Start kept the lock?)", err)
	}
	d.Stop()
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := Run([]string{"extra"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no arguments") {
		t.Errorf("got %v, want a usage error about arguments", err)
	}
}

// TestNetworkLeftAloneOffTheAppliance: an agent in a test root (like one
// on a developer's host) never touches the network, even with a network
// section, and says why over the API.
func TestNetworkLeftAloneOffTheAppliance(t *testing.T) {
	dirstest.SetRoot(t)
	conf, err := config.Parse([]byte("network: {eth0: dhcp}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Start(quiet(), Options{Fleet: *conf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer d.Stop()
	st, err := client.New("").Network()
	if err != nil {
		t.Fatal(err)
	}
	if st.Managed || !strings.Contains(st.Why, "not the appliance") || len(st.Interfaces) != 0 {
		t.Errorf("got %+v, want the network left alone: not the appliance", st)
	}
}
