package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
)

// connection is what 'paddock connections --json' says of a plug.
type connection struct {
	Interface string `json:"interface"`
	Plug      string `json:"plug"`
	Slot      string `json:"slot"`
	By        string `json:"by"`
}

func (d *device) connections(app string) map[string]connection {
	d.t.Helper()
	var conns []connection
	if err := json.Unmarshal([]byte(d.ok("connections", "--json", app)), &conns); err != nil {
		d.t.Fatal(err)
	}
	out := map[string]connection{}
	for _, c := range conns {
		out[c.Plug] = c
	}
	return out
}

// packPlugs packs the example app hello with the plugs plugs as revision
// rev, signed by pub, into hello-REV.pdk.
func (d *device) packPlugs(rev int, plugs string) string {
	d.t.Helper()
	src := filepath.Join(d.work, fmt.Sprintf("src-plugs-%d", rev))
	if err := os.CopyFS(src, os.DirFS(filepath.Join(examples, "hello"))); err != nil {
		d.t.Fatal(err)
	}
	yaml := filepath.Join(src, "meta/app.yaml")
	b, err := os.ReadFile(yaml)
	if err != nil {
		d.t.Fatal(err)
	}
	testutil.WriteFile(d.t, yaml, strings.Replace(string(b), "    command: bin/hello\n", "    command: bin/hello\n    plugs: ["+plugs+"]\n", 1))
	out := fmt.Sprintf("hello-%d.pdk", rev)
	d.ok("pack", src, "-o", out)
	d.ok("sign", out, "--key", "pub", "--revision", fmt.Sprint(rev), "--delegation", "pub.delegation")
	return out
}

// packGadget packs and signs the example amd64 gadget (pc) as revision 1.
func (d *device) packGadget() string {
	d.t.Helper()
	d.ok("pack", filepath.Join(examples, "gadget-amd64"), "-o", "pc.pdk")
	d.ok("sign", "pc.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
	return "pc.pdk"
}

// policyOf returns the kept policy of hello's command at revision rev.
func (d *device) policyOf(rev int) string {
	d.t.Helper()
	b, err := os.ReadFile(d.path(fmt.Sprintf("var/lib/paddock/profiles/hello/%d/hello.policy", rev)))
	if err != nil {
		matches, _ := filepath.Glob(d.path(fmt.Sprintf("var/lib/paddock/profiles/hello/%d/*", rev)))
		d.t.Fatalf("%v (the revision's profiles: %v)", err, matches)
	}
	return string(b)
}

// TestInterfaces connects and disconnects a plug of an app in a real
// agent: the gadget package gives the slot, the example app's
// serial-port plug waits for an operator while network connects by
// itself, a connect is refused while an upload of the same app is in
// progress, the connection survives a restart of the agent, and a fleet
// connect through a real mosquitto connects it again, reported in the
// device's retained state.
func TestInterfaces(t *testing.T) {
	needRoot(t)
	broker := mosquittotest.Start(t)
	d := newDevice(t)
	d.setupKeys("hello,pc")
	d.setupOperator()
	gadgetPkg := d.packGadget()
	hello1 := d.packPlugs(1, "network, serial-port")
	hello2 := d.packPlugs(2, "network, serial-port")
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")
	d.ok("install", gadgetPkg)
	d.ok("install", hello1)

	// network connected itself; serial-port waits for an operator.
	conns := d.connections("hello")
	if c := conns["hello:network"]; c.Slot != ":network" || c.By != "auto" {
		t.Errorf("hello:network: got %+v, want auto-connected to :network", c)
	}
	if c := conns["hello:serial-port"]; c.Slot != "" {
		t.Errorf("hello:serial-port: got %+v, want it not connected", c)
	}
	if p := d.policyOf(1); strings.Contains(p, `"serial-port"`) {
		t.Errorf("policy before the connect names serial-port:\n%s", p)
	}
	out := d.ok("connections")
	if !strings.Contains(out, "hello:serial-port") || !strings.Contains(out, "waits for an operator") {
		t.Errorf("paddock connections: got\n%s\nwant the unconnected serial-port plug", out)
	}
	if out := d.ok("interfaces"); !strings.Contains(out, "serial1") {
		t.Errorf("paddock interfaces: got\n%s\nwant the gadget's serial1 slot", out)
	}

	// The gadget is never removed.
	if r := d.paddock("remove", "pc"); r.code == 0 || !strings.Contains(r.stderr, "gadget") {
		t.Errorf("paddock remove pc: got exit code %d, %q, want a refusal naming the gadget", r.code, r.stderr)
	}

	// A connect is refused while an upload of hello is in progress.
	stop := stalledUpload(t, d, hello2)
	r := d.paddock("connect", "hello:serial-port")
	stop()
	if r.code == 0 || !strings.Contains(r.stderr, "in progress") {
		t.Errorf("connect during an upload of hello: got exit code %d, %q, want a conflict", r.code, r.stderr)
	}
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "" {
		t.Errorf("after the refused connect: got %+v, want it not connected", c)
	}

	// The connect: to the gadget's only serial-port slot.
	start := time.Now()
	out = d.ok("connect", "hello:serial-port")
	took := time.Since(start)
	if !strings.Contains(out, "hello:serial-port is connected to serial1") {
		t.Errorf("paddock connect: got %q", out)
	}
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "serial1" || c.By != "operator" {
		t.Errorf("after connect: got %+v, want serial1 by an operator", c)
	}
	if p := d.policyOf(1); !strings.Contains(p, `"serial-port"`) || !strings.Contains(p, "gadget:serial1") {
		t.Errorf("policy after the connect does not name the serial1 connection:\n%s", p)
	}
	t.Logf("paddock connect (command to change done): %v", took.Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "interfaces: paddock connect took %.0f ms (the command, change done)\n", took.Seconds()*1000)

	// The connection survives a restart, and a refresh keeps it.
	d.stopDaemon()
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "serial1" {
		t.Errorf("after a restart: got %+v, want serial1", c)
	}
	d.ok("refresh", hello2)
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "serial1" {
		t.Errorf("after a refresh: got %+v, want serial1", c)
	}
	if p := d.policyOf(2); !strings.Contains(p, "gadget:serial1") {
		t.Errorf("the refreshed revision's policy does not name the serial1 connection:\n%s", p)
	}

	// A refresh that adds a hardware plug says so before anything
	// changes; once refreshed, the new plug waits for an operator.
	hello3 := d.packPlugs(3, "network, serial-port, i2c")
	out = d.ok("refresh", "--dry-run", hello3)
	if !strings.Contains(out, "new plug hello:i2c (i2c): hardware: stays unconnected") || strings.Contains(out, "serial-port") {
		t.Errorf("refresh --dry-run: got\n%s\nwant the new i2c plug only", out)
	}
	for _, a := range d.list() {
		if a.Name == "hello" && a.Revision != 2 {
			t.Errorf("after the dry run: got hello at revision %d, want 2", a.Revision)
		}
	}
	d.ok("refresh", hello3)
	if out := d.ok("info", "hello"); !strings.Contains(out, "hello:i2c (i2c): not connected, new in this revision") {
		t.Errorf("paddock info: got\n%s\nwant the new i2c plug", out)
	}

	// A disconnect cut by a power cut before its policies are regenerated
	// is resumed at the next start.
	d.stopDaemon()
	d.startDaemon("regenerate-policies:before", "--broker", broker.URL(), "--device-id", "dev1")
	d.paddock("disconnect", "--no-wait", "hello:serial-port")
	if code := d.waitDaemonExit(); code != 99 {
		t.Fatalf("the agent with an injected fault: got exit code %d, want 99\n%s", code, d.daemonLog)
	}
	if p := d.policyOf(3); !strings.Contains(p, "gadget:serial1") {
		t.Errorf("policy cut before its regeneration lost serial1 already:\n%s", p)
	}
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")
	testutil.WaitFor(t, "the disconnect to finish after the restart", 20*time.Second, func() bool {
		return !strings.Contains(d.ok("changes"), "Doing") && !strings.Contains(d.policyOf(3), "gadget:serial1")
	})
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "" {
		t.Errorf("after the resumed disconnect: got %+v, want it not connected", c)
	}

	// Connected again over MQTT, with a signed fleet command; the retained
	// state lists the connection.
	r = d.paddock("fleet", "send", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--device", "dev1", "--timeout", "60s", "--json", "connect", "hello:serial-port", "serial1")
	if r.code != 0 || !strings.Contains(r.stdout, `"done"`) {
		t.Fatalf("fleet send connect: exit code %d\n%s%s\ndaemon:\n%s", r.code, r.stdout, r.stderr, d.daemonLog)
	}
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "serial1" {
		t.Errorf("after the fleet connect: got %+v, want serial1", c)
	}
	testutil.WaitFor(t, "the retained state to list hello:serial-port on serial1", 20*time.Second, func() bool {
		r := d.paddock("fleet", "devices", "--broker", broker.URL(), "--json")
		var devices []struct {
			ID          string       `json:"id"`
			Connections []connection `json:"connections"`
		}
		json.Unmarshal([]byte(r.stdout), &devices)
		for _, dev := range devices {
			for _, c := range dev.Connections {
				if dev.ID == "dev1" && c.Plug == "hello:serial-port" && c.Slot == "serial1" {
					return true
				}
			}
		}
		return false
	})
	r = d.paddock("fleet", "send", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--device", "dev1", "--timeout", "60s", "disconnect", "hello:serial-port")
	if r.code != 0 {
		t.Fatalf("fleet send disconnect: exit code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "" {
		t.Errorf("after the fleet disconnect: got %+v, want it not connected", c)
	}
}

// stalledUpload starts an upload of pkg (with its assertions) on the
// agent's socket that sends part of the package and waits: the agent
// holds the app for it. stop ends it.
func stalledUpload(t *testing.T, d *device, pkg string) (stop func()) {
	t.Helper()
	assertions, err := os.ReadFile(filepath.Join(d.work, pkg+".assert"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", d.path("run/paddock.sock"))
	}}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", "http://paddock/v1/apps", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	part, _ := mw.CreateFormField("assertions")
	part.Write(assertions)
	part, _ = mw.CreateFormFile("package", "hello.pdk")
	part.Write([]byte("hsqs")) // the first bytes of a SquashFS; the rest never comes
	// The agent holds the app once it has checked the assertions.
	testutil.WaitFor(t, "the upload to hold hello", 10*time.Second, func() bool {
		r := d.paddock("revert", "hello")
		return strings.Contains(r.stderr, "in progress")
	})
	return func() {
		pw.CloseWithError(io.ErrUnexpectedEOF)
		<-done
	}
}

// TestConnectUndone fails a connect half-way in a real agent: the kept
// policy of the app's command is made immutable (chattr +i), so the
// regeneration that the connect's second task does cannot replace it. The
// change is undone: the plug is not connected, and the policy and the
// AppArmor profile on disk are the old ones.
func TestConnectUndone(t *testing.T) {
	needRoot(t)
	testutil.NeedCommand(t, "chattr", "e2fsprogs")
	d := newDevice(t)
	d.setupKeys("hello,pc")
	gadgetPkg := d.packGadget()
	hello1 := d.packPlugs(1, "network, serial-port")
	d.startDaemon("")
	d.ok("install", gadgetPkg)
	d.ok("install", hello1)
	policy := d.path("var/lib/paddock/profiles/hello/1/hello.policy")
	apparmor := d.path("var/lib/paddock/profiles/hello/1/hello.apparmor")
	before, beforeAA := d.policyOf(1), readFile(t, apparmor)
	if out, err := exec.Command("chattr", "+i", policy).CombinedOutput(); err != nil {
		t.Skipf("cannot make the policy immutable here (the test root's filesystem): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", policy).Run() })

	r := d.paddock("connect", "hello:serial-port")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot connect hello:serial-port") {
		t.Fatalf("connect with an immutable policy: got exit code %d, %q, want a failure", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "undone") {
		t.Errorf("connect's output: got %q, want its first task undone", r.stderr)
	}
	if c := d.connections("hello")["hello:serial-port"]; c.Slot != "" {
		t.Errorf("after the failed connect: got %+v, want it not connected", c)
	}
	if got := d.policyOf(1); got != before {
		t.Errorf("policy after the failed connect:\n%s\nwant the old one:\n%s", got, before)
	}
	if got := readFile(t, apparmor); got != beforeAA {
		t.Errorf("AppArmor profile after the failed connect:\n%s\nwant the old one:\n%s", got, beforeAA)
	}
	// Once the policy can be written again, the connect succeeds.
	exec.Command("chattr", "-i", policy).Run()
	d.ok("connect", "hello:serial-port")
	if p := d.policyOf(1); !strings.Contains(p, "gadget:serial1") {
		t.Errorf("policy after the second connect:\n%s\nwant serial1", p)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
