package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt"
)

// holdingServer serves one file on loopback. Until released, a request
// without a Range gets the first half and then nothing more, so that a
// download stays in progress; afterwards, and for Range requests, it
// serves what is asked.
type holdingServer struct {
	addr     string
	data     []byte
	mu       sync.Mutex
	released bool
	ranges   []string      // the Range headers received
	held     chan struct{} // closed once a download is held
	once     sync.Once
}

func serveHolding(t *testing.T, data []byte) *holdingServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingServer{addr: l.Addr().String(), data: data, held: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *holdingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	released := h.released
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	h.mu.Unlock()
	if released || r.Header.Get("Range") != "" {
		http.ServeContent(w, r, "hello.pdk", time.Time{}, bytes.NewReader(h.data))
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(h.data)))
	w.WriteHeader(http.StatusOK)
	w.Write(h.data[:len(h.data)/2])
	w.(http.Flusher).Flush()
	h.once.Do(func() { close(h.held) })
	<-r.Context().Done() // until the agent is gone
}

func (h *holdingServer) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
}

func (h *holdingServer) rangeRequests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ranges...)
}

// eventLog collects the events of dev1 from the broker.
type eventLog struct {
	mu     sync.Mutex
	events []mqtt.Event
}

func watchEvents(t *testing.T, broker string) *eventLog {
	t.Helper()
	e := &eventLog{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cannot connect to the broker: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(mqtt.EventsTopic("dev1"), 1, func(_ paho.Client, m paho.Message) {
		var ev mqtt.Event
		if json.Unmarshal(m.Payload(), &ev) == nil {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cannot subscribe: %v", tok.Error())
	}
	return e
}

// finals returns the final events of command id, one per sequence
// number (events are delivered at least once; the operator drops
// duplicates by seq).
func (e *eventLog) finals(id string) []mqtt.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[uint64]bool{}
	var out []mqtt.Event
	for _, ev := range e.events {
		if ev.Command == id && ev.Final() && !seen[ev.Seq] {
			seen[ev.Seq] = true
			out = append(out, ev)
		}
	}
	return out
}

// fleetDevice is a device with a root key, a publisher, an operator and
// hello packed and signed as revision 1.
func fleetDevice(t *testing.T) *device {
	d := newDevice(t)
	d.setupKeys("hello")
	d.setupOperator()
	d.packHello("1.0", 1)
	return d
}

// TestFleetInstallSurvivesKill pins issue 10's "after an agent restart the
// command is reported failed while the change resumes and finishes": the
// agent is killed (SIGKILL) while the install's download is in progress;
// after the restart the download resumes (a Range request), the change
// ends done, and the operator's 'fleet send' receives done, exactly once.
// On the old code the download ran outside the change and the restarted
// agent answered "failed: interrupted by a restart".
func TestFleetInstallSurvivesKill(t *testing.T) {
	needRoot(t)
	broker := mosquittotest.Start(t)
	d := fleetDevice(t)
	pkg, err := os.ReadFile(filepath.Join(d.work, "hello-1.pdk"))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHolding(t, pkg)
	events := watchEvents(t, broker.URL())
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")

	send := d.startSend(broker.URL(), "http://"+srv.addr+"/hello.pdk")

	select {
	case <-srv.held:
	case err := <-send.done:
		t.Fatalf("fleet send ended before the download started: %v\n%s%s\ndaemon:\n%s", err, send.out.String(), send.errb.String(), d.daemonLog)
	case <-time.After(30 * time.Second):
		t.Fatalf("the download did not start within 30s\ndaemon:\n%s", d.daemonLog)
	}
	if r := d.ok("changes"); !strings.Contains(r, "Doing") {
		t.Fatalf("paddock changes: got\n%s\nwant the install in progress", r)
	}
	// kill -9, by PID: nothing of the agent runs its stop.
	if err := d.daemon.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.daemonDone
	d.daemon = nil
	srv.release()
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")

	send.wait(90 * time.Second)
	var res struct {
		Command string `json:"command"`
	}
	if err := json.Unmarshal(send.out.Bytes(), &res); err != nil || res.Command == "" {
		t.Fatalf("fleet send --json: got %q, %v", send.out.String(), err)
	}
	if !strings.Contains(send.out.String(), `"result": "done"`) {
		t.Errorf("fleet send: got %s, want done", send.out.String())
	}
	time.Sleep(2 * time.Second) // a second answer would come now
	finals := events.finals(res.Command)
	if len(finals) != 1 || finals[0].Type != mqtt.EventDone || finals[0].Replayed {
		t.Errorf("final events of %s: got %+v, want one done", res.Command, finals)
	}
	if got := srv.rangeRequests(); len(got) == 0 {
		t.Errorf("got no Range request, want the download resumed after the restart")
	}
	if apps := d.list(); len(apps) != 1 || apps[0].Name != "hello" || apps[0].Revision != 1 {
		t.Errorf("after the restart: got %+v, want hello revision 1", apps)
	}
	if out := d.ok("run", "hello"); !strings.Contains(out, "Hello from hello") {
		t.Errorf("paddock run hello: got %q", out)
	}
}

// TestFleetDegradedMountStopsRollout pins issue 10's "fleetlink reports
// health: ok as a constant": a kept package that no longer mounts at the
// agent's start makes the device report degraded, saying which revision,
// and 'fleet rollout --wait-healthy' stops on it and says why.
func TestFleetDegradedMountStopsRollout(t *testing.T) {
	needRoot(t)
	t.Setenv("PADDOCK_FLEET_DIR", t.TempDir()) // where the rollout is kept
	broker := mosquittotest.Start(t)
	d := fleetDevice(t)
	args := []string{"--broker", broker.URL(), "--device-id", "dev1", "--group", "lab"}
	d.startDaemon("", args...)
	d.ok("install", "hello-1.pdk")
	d.stopDaemon()
	d.unmountAll() // as a reboot would
	// The kept package is damaged: same size, not a SquashFS any more.
	blob := d.path("var/lib/paddock/packages/hello_1.pdk")
	fi, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, bytes.Repeat([]byte{0xA5}, int(fi.Size())), 0o644); err != nil {
		t.Fatal(err)
	}
	d.startDaemon("", args...)

	var devices []struct {
		ID       string   `json:"id"`
		Health   string   `json:"health"`
		Problems []string `json:"problems"`
	}
	testutil.WaitFor(t, "dev1 degraded in 'fleet devices'", 20*time.Second, func() bool {
		devices = nil
		json.Unmarshal([]byte(d.ok("fleet", "devices", "--broker", broker.URL(), "--json")), &devices)
		return len(devices) == 1 && devices[0].Health == "degraded"
	})
	if p := strings.Join(devices[0].Problems, "; "); !strings.Contains(p, "hello revision 1 is not mounted") || !strings.Contains(p, "last start") {
		t.Errorf("problems: got %q, want hello revision 1 not mounted and the start's error", p)
	}
	if table := d.ok("fleet", "devices", "--broker", broker.URL()); !strings.Contains(table, "degraded (") || !strings.Contains(table, "hello revision 1 is not mounted") {
		t.Errorf("fleet devices: got\n%s\nwant degraded with the reason", table)
	}

	r := d.paddock("fleet", "rollout", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--group", "lab", "--wait-healthy", "10m", "--timeout", "60s", "ping")
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "stopped") {
		t.Fatalf("fleet rollout: exit %d, want it stopped\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "unhealthy") || !strings.Contains(r.stderr, "hello revision 1 is not mounted") {
		t.Errorf("fleet rollout: got\n%s\nwant dev1 unhealthy with the reason", r.stderr)
	}
}

// TestFleetInstallSurvivesPowerCut cuts the agent later in the install
// (PADDOCK_FAULT, before the profiles are made, after the revision was
// mounted) and drops its mounts as a power cut does: after the restart
// the change resumes and 'fleet send' gets done, once.
func TestFleetInstallSurvivesPowerCut(t *testing.T) {
	needRoot(t)
	broker := mosquittotest.Start(t)
	d := fleetDevice(t)
	artifacts := filepath.Join(d.work, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	os.Rename(filepath.Join(d.work, "hello-1.pdk"), filepath.Join(artifacts, "hello.pdk"))
	addr := serveArtifacts(t, d, artifacts)
	events := watchEvents(t, broker.URL())
	d.startDaemon("generate-profiles:before", "--broker", broker.URL(), "--device-id", "dev1")

	send := d.startSend(broker.URL(), "http://"+addr+"/hello.pdk")
	if code := d.waitDaemonExit(); code != faultExitCode {
		t.Fatalf("the agent exited with %d, want the fault's %d\n%s", code, faultExitCode, d.daemonLog)
	}
	d.unmountAll() // the power cut takes the mounts
	d.startDaemon("", "--broker", broker.URL(), "--device-id", "dev1")
	send.wait(90 * time.Second)
	var res struct {
		Command string `json:"command"`
	}
	if err := json.Unmarshal(send.out.Bytes(), &res); err != nil || !strings.Contains(send.out.String(), `"result": "done"`) {
		t.Fatalf("fleet send --json: got %q, %v, want done", send.out.String(), err)
	}
	time.Sleep(2 * time.Second) // a second answer would come now
	if finals := events.finals(res.Command); len(finals) != 1 || finals[0].Type != mqtt.EventDone {
		t.Errorf("final events of %s: got %+v, want one done", res.Command, finals)
	}
	if out := d.ok("run", "hello"); !strings.Contains(out, "Hello from hello") {
		t.Errorf("paddock run hello: got %q", out)
	}
}

// fleetSend is a 'paddock fleet send --json install' the test started.
type fleetSend struct {
	d         *device
	out, errb bytes.Buffer
	done      chan error // its exit
}

// startSend starts, in the work folder, an install of url on dev1 through
// broker, signed by ops with hello revision 1's assertions; it is killed
// when the test ends.
func (d *device) startSend(broker, url string) *fleetSend {
	d.t.Helper()
	cmd := exec.Command(binary, "fleet", "send", "--broker", broker, "--key", "ops", "--delegation", "ops.delegation",
		"--assert", "hello-1.pdk.assert", "--device", "dev1", "--timeout", "90s", "--json", "install", url)
	s := &fleetSend{d: d, done: make(chan error, 1)}
	cmd.Dir, cmd.Env = d.work, d.env()
	cmd.Stdout, cmd.Stderr = &s.out, &s.errb
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	d.t.Cleanup(func() { cmd.Process.Kill() })
	return s
}

// wait fails the test, with the send's output and the agent's log, unless
// the send ends well within timeout.
func (s *fleetSend) wait(timeout time.Duration) {
	s.d.t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			s.d.t.Fatalf("fleet send: %v\n%s%s\ndaemon:\n%s", err, s.out.String(), s.errb.String(), s.d.daemonLog)
		}
	case <-time.After(timeout):
		s.d.t.Fatalf("fleet send did not end within %v\n%s\ndaemon:\n%s", timeout, s.errb.String(), s.d.daemonLog)
	}
}
