package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt/fleet"
)

// abDevice is a real agent in a test root with A/B base slots: two slot
// files, a boot environment file, init's boot record and a boot id, so
// that the test can play init and the reboots the agent asks for.
type abDevice struct {
	*device
	id      string
	bootenv string
	boots   int
}

func newABDevice(t *testing.T, op *device, id string) *abDevice {
	d := &abDevice{device: newDevice(t), id: id}
	d.keys = op.keys
	d.ok("key", "trust", filepath.Join(op.work, "root.asc"))
	d.bootenv = d.path("bootenv")
	if err := os.WriteFile(d.bootenv, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		if err := os.WriteFile(d.path("base-"+s), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(d.path("base-"+s), 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	d.boot("a", false)
	return d
}

// boot does what a boot and init do: a new boot id, and the record of
// the slot booted.
func (d *abDevice) boot(slot string, tried bool) {
	d.boots++
	testutil.WriteFile(d.t, d.path("proc/sys/kernel/random/boot_id"), strings.Repeat(string(rune('0'+d.boots%10)), 8)+"-test-boot\n")
	rec := boot.BootRecord{Slot: slot, Tried: tried, Bootenv: d.bootenv,
		Partitions: map[string]string{"base-a": d.path("base-a"), "base-b": d.path("base-b")}}
	b, _ := json.Marshal(rec)
	testutil.WriteFile(d.t, d.path(boot.RunRecordRel), string(b))
}

func (d *abDevice) start(broker string) {
	d.startDaemon("", "--broker", broker, "--device-id", d.id, "--group", "lab")
}

// bootEnv reads the device's boot environment.
func (d *abDevice) bootEnv() *boot.Env {
	e, err := boot.Read(d.bootenv)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// reboot stops the agent and boots again as init would: the try when one
// is set, or, with refuse, init refuses the try for that reason (as it
// does for a base that fails dm-verity) and boots the old slot.
func (d *abDevice) reboot(broker, refuse string) {
	d.t.Helper()
	d.stopDaemon()
	if refuse != "" {
		if err := boot.MarkBad(d.bootenv, "b", refuse); err != nil {
			d.t.Fatal(err)
		}
	}
	slot, next := boot.Choose(d.bootEnv(), "")
	if err := boot.Write(d.bootenv, next); err != nil {
		d.t.Fatal(err)
	}
	d.boot(slot, next.Trying == slot)
	d.start(broker)
}

// baseChange returns the device's base-update change, or nil.
func (d *abDevice) baseChange() *apitypes.ChangeInfo {
	var chgs []apitypes.ChangeInfo
	if err := json.Unmarshal([]byte(d.ok("changes", "--json")), &chgs); err != nil {
		d.t.Fatal(err)
	}
	for _, c := range chgs {
		if c.Kind == "base-update" {
			return &c
		}
	}
	return nil
}

// TestFleetRolloutOfABase rolls a base update out with 'paddock fleet
// rollout' to three real agents over mosquitto, one device per wave (issue
// 13, item 6: a rollout of a base waits for each device's commit). The
// artifact server cuts dev1's download mid-transfer; dev1 resumes it with
// a Range request from where it stopped (item 3). Each
// agent runs in a test root with A/B slot files; the test plays init and
// the reboots. dev1 writes slot b, sets the try and waits for the reboot;
// the rollout sends nothing to dev2 until dev1, rebooted into the try, has
// committed it (dev2's change starts after dev1's ended). dev2's try is
// refused by init (as for a base that fails dm-verity): its answer is
// "rolled back: REASON", the rollout stops (--max-failures 0), and dev3
// gets nothing.
func TestFleetRolloutOfABase(t *testing.T) {
	needRoot(t)
	begin := time.Now()
	broker := mosquittotest.Start(t)
	op := newDevice(t)
	op.setupKeys("hello")
	op.setupOperator()
	artifacts := filepath.Join(op.work, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	op.ok("image", "base", "--arch", runtime.GOARCH, "--paddock", binary, "--trust", "root.asc", "-o", "artifacts/base-2.img",
		"--version", "2", "--key", "root", "--revision", "2")
	// The artifact server cuts the first download mid-transfer: dev1
	// resumes it.
	srv := startArtifactServer(t, artifacts, true)
	addr := fmt.Sprintf("127.0.0.1:%d", srv.port)
	devs := []*abDevice{newABDevice(t, op, "dev1"), newABDevice(t, op, "dev2"), newABDevice(t, op, "dev3")}
	for _, d := range devs {
		d.start(broker.URL())
	}
	testutil.WaitFor(t, "three devices online in 'fleet devices'", 30*time.Second, func() bool {
		r := op.paddock("fleet", "devices", "--broker", broker.URL(), "--json")
		return strings.Count(r.stdout, `"online": true`)+strings.Count(r.stdout, `"online":true`) == 3
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "fleet", "rollout", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--group", "lab", "--waves", "33%,66%,100%", "--max-failures", "0", "--timeout", "2m", "--json",
		"--assert", "artifacts/base-2.img.assert", "base-update", "http://"+addr+"/base-2.img")
	cmd.Dir = op.work
	cmd.Env = append(op.env(), "PADDOCK_FLEET_DIR="+t.TempDir())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// dev1 writes slot b and sets the try; the agent of a test root
	// cannot reboot, so its change waits for one. Meanwhile the rollout
	// has sent nothing to dev2.
	tryOf := func(d *abDevice) {
		t.Helper()
		testutil.WaitFor(t, d.id+" sets the try of slot b", 60*time.Second, func() bool {
			select {
			case err := <-done:
				t.Fatalf("the rollout ended before %s set its try: %v\n%s%s\n%s", d.id, err, stdout.String(), stderr.String(), d.daemonLog)
			default:
			}
			return d.bootEnv().Try == "b"
		})
	}
	tryOf(devs[0])
	if c := devs[1].baseChange(); c != nil {
		t.Fatalf("dev2 got the base update before dev1 rebooted to try it: %+v", *c)
	}
	devs[0].reboot(broker.URL(), "")
	// dev2 gets it once dev1 has committed; init refuses dev2's try.
	tryOf(devs[1])
	c1, c2 := devs[0].baseChange(), devs[1].baseChange()
	if c1 == nil || c1.Status != "Done" || c1.ReadyTime == nil || c2 == nil || !c2.SpawnTime.After(*c1.ReadyTime) {
		t.Errorf("got dev1's change %+v and dev2's %+v, want dev1's done (committed) before dev2's began", c1, c2)
	}
	if e := devs[0].bootEnv(); e.Slot != "b" || e.Trying != "" || e.Last.Result != boot.ResultCommitted {
		t.Errorf("dev1: got the environment %+v, want slot b committed", *e)
	}
	const why = "verity: the base does not match its signed root hash"
	devs[1].reboot(broker.URL(), why)

	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the rollout did not end within 2 min of dev2's fallback\n%s%s\ndev2:\n%s", stdout.String(), stderr.String(), devs[1].daemonLog)
	}
	if err == nil {
		t.Fatalf("the rollout succeeded with a device rolled back:\n%s%s", stdout.String(), stderr.String())
	}
	var st fleet.RolloutStatus
	if err := json.Unmarshal([]byte(stdout.String()), &st); err != nil {
		t.Fatalf("cannot read the rollout's status: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	got := map[string]string{}
	for _, d := range st.Devices {
		got[d.ID] = d.Result + ": " + d.Message
	}
	t.Logf("the rollout: %s, %+v", st.State, got)
	if !strings.HasPrefix(got["dev1"], "done") || !strings.HasPrefix(got["dev2"], "failed") ||
		!strings.Contains(got["dev2"], "rolled back: "+why) || got["dev3"] != ": " {
		t.Errorf("got the devices' results %q, want dev1 done, dev2 failed (rolled back: %s), dev3 not sent", got, why)
	}
	srv.checkResumed(t, "base-2.img")
	if c := devs[2].baseChange(); c != nil {
		t.Errorf("dev3 got the base update after the rollout stopped: %+v", *c)
	}
	if e := devs[1].bootEnv(); e.Slot != "a" || e.Try != "" || e.Trying != "" {
		t.Errorf("dev2: got the environment %+v, want slot a running, no try", *e)
	}
	t.Logf("a base rolled out to three agents, one rolled back: %v", time.Since(begin).Round(time.Millisecond))
}

// artifactServer serves the artifacts of a directory with Range requests,
// as 'paddock fleet serve' does, on loopback; with cut, it cuts the first
// download of each image after 64 KiB (a network cut mid-transfer).
type artifactServer struct {
	port int
	mu   sync.Mutex
	// requests lists each file's requests, as "RANGE" or "RANGE cut".
	requests map[string][]string
}

func startArtifactServer(t *testing.T, dir string, cut bool) *artifactServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &artifactServer{port: ln.Addr().(*net.TCPAddr).Port, requests: map[string][]string{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		fh, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer fh.Close()
		fi, _ := fh.Stat()
		s.mu.Lock()
		first := cut && strings.HasSuffix(name, ".img") && len(s.requests[name]) == 0
		entry := r.Header.Get("Range")
		if first {
			entry += " cut"
		}
		s.requests[name] = append(s.requests[name], entry)
		s.mu.Unlock()
		if !first {
			http.ServeContent(w, r, name, fi.ModTime(), fh)
			return
		}
		cw := &cutWriter{ResponseWriter: w, left: 64 << 10}
		http.ServeContent(cw, r, name, fi.ModTime(), fh)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// cutWriter passes on n bytes of the body, then drops the connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if len(b) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		c.left = 0
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	c.left -= len(b)
	return c.ResponseWriter.Write(b)
}

// checkResumed checks that the first download of name was cut and the
// next one asked for the rest, from further on.
func (s *artifactServer) checkResumed(t *testing.T, name string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	start := func(r string) int64 {
		from, _, _ := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
		n, _ := strconv.ParseInt(from, 10, 64)
		return n
	}
	reqs := s.requests[name]
	t.Logf("%s: requests %q", name, reqs)
	if len(reqs) < 2 || !strings.HasSuffix(reqs[0], " cut") {
		t.Errorf("%s: got requests %q, want a cut one and more", name, reqs)
		return
	}
	if first, next := start(reqs[0]), start(reqs[1]); next <= first {
		t.Errorf("%s: the download after the cut asked for %q, want to resume after byte %d of %q", name, reqs[1], first, reqs[0])
	}
}
