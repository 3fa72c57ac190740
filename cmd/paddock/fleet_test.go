package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
)

// TestFleetFirstSteps runs the fleet issue's sequence: a device agent on a
// broker, an artifact server, the device listed, a signed install sent over
// MQTT, and the retained state naming the app.
func TestFleetFirstSteps(t *testing.T) {
	needRoot(t)
	broker := mosquittotest.Start(t)
	d := newDevice(t)
	d.setupKeys("hello")
	d.setupOperator()
	artifacts := filepath.Join(d.work, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	d.ok("pack", filepath.Join(examples, "hello"), "-o", "artifacts/hello.pdk")
	d.ok("sign", "artifacts/hello.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")

	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")
	addr := serveArtifacts(t, d, artifacts)

	// The device shows up online.
	var devices []struct {
		ID     string `json:"id"`
		Online bool   `json:"online"`
	}
	testutil.WaitFor(t, "dev1 online in 'fleet devices'", 20*time.Second, func() bool {
		r := d.paddock("fleet", "devices", "--broker", broker.URL(), "--json")
		devices = nil
		json.Unmarshal([]byte(r.stdout), &devices)
		return len(devices) == 1 && devices[0].ID == "dev1" && devices[0].Online
	})

	// A signed install, waited for.
	r := d.paddock("fleet", "send", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--assert", "artifacts/hello.pdk.assert", "--device", "dev1", "install", "http://"+addr+"/hello.pdk")
	if r.code != 0 {
		t.Fatalf("fleet send install: exit code %d\n%s%s\ndaemon:\n%s", r.code, r.stdout, r.stderr, d.daemonLog)
	}
	if apps := d.list(); len(apps) != 1 || apps[0].Name != "hello" {
		t.Fatalf("after the fleet install: got %+v, want hello", apps)
	}
	if out := d.ok("run", "hello"); !strings.Contains(out, "Hello from hello") {
		t.Errorf("paddock run hello after the fleet install: got %q", out)
	}

	// The retained state names the app.
	if _, err := exec.LookPath("mosquitto_sub"); err == nil {
		out, err := exec.Command("mosquitto_sub", "-p", fmt.Sprint(broker.Port()), "-h", "127.0.0.1",
			"-t", "paddock/v1/devices/dev1/state", "-C", "1", "-W", "10").Output()
		if err != nil || !bytes.Contains(out, []byte(`"hello"`)) {
			t.Errorf("retained state: got %q, %v, want it to name hello", out, err)
		}
	}

	// A command signed by a key without an operator delegation is refused.
	r = d.paddock("fleet", "send", "--broker", broker.URL(), "--key", "pub", "--delegation", "pub.delegation",
		"--device", "dev1", "--timeout", "20s", "remove", "hello")
	if r.code == 0 {
		t.Errorf("a command signed by a publisher key was applied:\n%s%s", r.stdout, r.stderr)
	}
	if apps := d.list(); len(apps) != 1 {
		t.Errorf("after the refused command: got %+v, want hello still installed", apps)
	}
}

// serveArtifacts runs 'paddock fleet serve' on a free loopback port and
// returns its address.
func serveArtifacts(t *testing.T, d *device, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(binary, "fleet", "serve", dir, "--listen", addr)
	cmd.Env = d.env()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.WaitFor(t, "the artifact server", 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}
