package basemgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/partition"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/baseupdate"
	"paddock.dev/paddock/ota/keys"
)

// device is a fake A/B device in a temporary root: two slot files, a
// bootenv file, init's boot record, a trusted root key.
type device struct {
	t       *testing.T
	st      *state.State
	runner  *state.Runner
	m       *Manager
	key     *keys.PrivateKey
	bootenv string
	slots   map[string]string
	bootID  string
	reboots atomic.Int32
}

func newDevice(t *testing.T) *device {
	st := statetest.Open(t)
	d := &device{t: t, st: st, runner: state.NewRunner(st), key: asserttest.Key(t, "root"), bootID: "boot-1"}
	asserttest.Trust(t, d.key)
	d.bootenv = filepath.Join(dirs.Root, "bootenv")
	if err := os.WriteFile(d.bootenv, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	d.slots = map[string]string{}
	for _, s := range []string{"a", "b"} {
		d.slots[s] = filepath.Join(dirs.Root, "base-"+s)
		if err := os.WriteFile(d.slots[s], make([]byte, 4<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d.boot("a", false)
	env := manager.NewEnv(st, d.runner, slog.New(slog.DiscardHandler))
	d.m = New(env)
	d.m.bootID = func() string { return d.bootID }
	d.m.Reboot = func() error { d.reboots.Add(1); return nil }
	d.m.HealthWindow = time.Hour
	d.m.poll = time.Millisecond
	return d
}

// boot writes init's record of a boot of slot, as init does.
func (d *device) boot(slot string, tried bool) {
	rec := boot.BootRecord{Slot: slot, Tried: tried, Bootenv: d.bootenv,
		Partitions: map[string]string{"base-a": d.slots["a"], "base-b": d.slots["b"]}}
	b, _ := json.Marshal(rec)
	p := filepath.Join(dirs.Root, boot.RunRecordRel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// reboot does what a reboot and init do: a new boot id, the boot rule
// applied to the environment, the record of the slot it chose.
func (d *device) reboot() string {
	d.t.Helper()
	d.bootID += "+"
	env, err := boot.Read(d.bootenv)
	if err != nil {
		d.t.Fatal(err)
	}
	slot, next := boot.Choose(env, "")
	if err := boot.Write(d.bootenv, next); err != nil {
		d.t.Fatal(err)
	}
	d.boot(slot, next.Trying == slot)
	return slot
}

// image makes a slot image of n MiB of random bytes and its signed
// base-revision bundle, in the root.
func (d *device) image(name string, revision int, seed uint64) (string, []byte) {
	d.t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	fs := filepath.Join(dirs.Root, name+".squashfs")
	os.WriteFile(fs, data, 0o600)
	img := filepath.Join(dirs.Root, name)
	im, err := baseupdate.MakeImage(fs, img)
	if err != nil {
		d.t.Fatal(err)
	}
	rev := im.Revision()
	rev.Name, rev.Version, rev.Revision, rev.Arch, rev.Timestamp = "paddock-base", "v"+name, revision, d.m.Arch, time.Now().Add(-time.Hour)
	a, err := assert.SignBaseRevision(rev, d.key)
	if err != nil {
		d.t.Fatal(err)
	}
	return img, a.Encode()
}

// ensure runs the tasks that can run.
func (d *device) ensure() {
	d.t.Helper()
	for range 5 {
		if err := d.runner.Ensure(); err != nil {
			d.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // past the tasks' retry time
	}
}

func (d *device) change(id string) (status state.Status, err error, waiting string) {
	d.st.Lock()
	defer d.st.Unlock()
	chg := d.st.Change(id)
	for _, t := range chg.Tasks() {
		if !t.Status().Ready() && waiting == "" {
			waiting = t.Kind()
		}
	}
	return chg.Status(), chg.Err(), waiting
}

func (d *device) env() *boot.Env {
	d.t.Helper()
	e, err := boot.Read(d.bootenv)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// TestUpdateCommits: an update writes slot b, verifies it, keeps its
// assertion, sets the try, reboots; in the tried boot the healthy device
// commits b, and the change is done.
func TestUpdateCommits(t *testing.T) {
	d := newDevice(t)
	img, bundle := d.image("b.img", 2, 1)
	id, err := d.m.Update(UpdateOptions{Assertions: bundle, File: img})
	if err != nil {
		t.Fatal(err)
	}
	d.ensure()
	if _, err, waiting := d.change(id); err != nil || waiting != "reboot" {
		t.Fatalf("got error %v waiting in %q, want no error waiting in reboot", err, waiting)
	}
	want, _ := os.ReadFile(img)
	if got, _ := os.ReadFile(d.slots["b"]); !bytes.Equal(got[:len(want)], want) {
		t.Errorf("slot b does not hold the image")
	}
	if got, _ := os.ReadFile(filepath.Join(dirs.LibDir, partition.BaseAssertion("b"))); !bytes.Equal(got, bundle) {
		t.Errorf("the assertion of slot b is not kept")
	}
	if e := d.env(); e.Try != "b" || e.Slot != "a" || e.Bad != "" {
		t.Errorf("got bootenv %+v, want slot a, try b", e)
	}
	testWaitReboots(t, d, 1)
	if slot := d.reboot(); slot != "b" {
		t.Fatalf("init booted slot %s, want b", slot)
	}
	d.ensure()
	status, err, _ := d.change(id)
	if status != state.DoneStatus || err != nil {
		t.Fatalf("got change %s (%v), want Done", status, err)
	}
	if e := d.env(); e.Slot != "b" || e.Trying != "" || e.Last.Result != boot.ResultCommitted {
		t.Errorf("got bootenv %+v, want slot b committed", e)
	}
	st, err := d.m.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Running != "b" || st.Slots[1].State != boot.StateGood || st.Slots[1].Revision != 2 {
		t.Errorf("got status %+v, want b running, good, revision 2", st)
	}
}

// TestUpdateWaitsForTheNetwork pins a bug: a base update from a URL failed
// at once when its download did (fetch's own retries span 3.5 s), so a
// device whose network comes up a few seconds after the agent, as after a
// power cut in the middle of the update, lost the update instead of
// resuming it. The write now runs again a few times, downloadRetry apart:
// the download succeeds once the server answers, and fails the change only
// after those tries.
func TestUpdateWaitsForTheNetwork(t *testing.T) {
	d := newDevice(t)
	d.m.downloadRetry = time.Millisecond
	img, bundle := d.image("b.img", 2, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens yet: connection refused
	id, err := d.m.Update(UpdateOptions{Assertions: bundle, URLs: []string{"http://" + addr + "/b.img"}})
	if err != nil {
		t.Fatal(err)
	}
	runWrite := func() {
		t.Helper()
		for range 50 {
			if status, _, _ := d.change(id); status.Ready() {
				return
			}
			d.ensure()
			d.st.Lock()
			var n int
			for _, task := range d.st.Change(id).Tasks() {
				if task.Kind() == "write-base" {
					task.Get("download-retries", &n)
				}
			}
			d.st.Unlock()
			if n >= 1 {
				return
			}
		}
	}
	runWrite()
	if status, err, waiting := d.change(id); status.Ready() || waiting != "write-base" {
		t.Fatalf("with the server down: got change %s (%v) waiting in %q, want write-base retrying", status, err, waiting)
	}
	// The server comes up: the write goes on and the update gets to the reboot.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Dir(img)))}
	go srv.Serve(ln)
	defer srv.Close()
	for range 100 {
		d.ensure()
		if _, _, waiting := d.change(id); waiting != "write-base" && waiting != "verify-base" && waiting != "set-try" {
			break
		}
	}
	if status, err, waiting := d.change(id); err != nil || waiting != "reboot" {
		t.Fatalf("with the server up: got change %s (%v) waiting in %q, want it waiting in reboot", status, err, waiting)
	}
}

func testWaitReboots(t *testing.T, d *device, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.reboots.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d reboots, want %d", d.reboots.Load(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpdateRollsBackUnhealthy: a tried base that is not healthy within
// the window is marked bad, the device reboots to the old slot, and the
// change ends with "rolled back: REASON".
func TestUpdateRollsBackUnhealthy(t *testing.T) {
	d := newDevice(t)
	img, bundle := d.image("b.img", 2, 2)
	id, err := d.m.Update(UpdateOptions{Assertions: bundle, File: img})
	if err != nil {
		t.Fatal(err)
	}
	d.ensure()
	testWaitReboots(t, d, 1)
	d.reboot()
	d.m.Gate = func() (bool, string) { return false, "hello is error: probe failed" }
	d.m.HealthWindow = 0
	d.m.rebooting = false // a new boot of the agent
	d.ensure()
	if e := d.env(); e.Bad != "b" {
		t.Fatalf("got bootenv %+v, want b marked bad", e)
	}
	testWaitReboots(t, d, 2)
	if slot := d.reboot(); slot != "a" {
		t.Fatalf("init booted slot %s, want a", slot)
	}
	d.ensure()
	status, err, _ := d.change(id)
	if status != state.ErrorStatus || err == nil || !strings.Contains(err.Error(), "rolled back: unhealthy") || !strings.Contains(err.Error(), "probe failed") {
		t.Fatalf("got change %s (%v), want Error rolled back with the reason", status, err)
	}
	if e := d.env(); e.Slot != "a" {
		t.Errorf("got bootenv %+v, want slot a", e)
	}
}

// TestUpdateRefusals: an update refused at once leaves the slots alone.
func TestUpdateRefusals(t *testing.T) {
	d := newDevice(t)
	img, bundle := d.image("b.img", 2, 3)
	other := asserttest.Key(t, "other")
	_, untrusted := func() (string, []byte) {
		k := d.key
		d.key = other
		defer func() { d.key = k }()
		return d.image("x.img", 2, 4)
	}()
	if _, err := d.m.Update(UpdateOptions{Assertions: untrusted, File: img}); !errors.Is(err, ErrRefused) {
		t.Errorf("untrusted: got %v, want ErrRefused", err)
	}
	if _, err := d.m.Update(UpdateOptions{Assertions: bundle, File: img, Reboot: "25:00-26:00"}); !errors.Is(err, ErrRefused) {
		t.Errorf("bad window: got %v, want ErrRefused", err)
	}
	// While a tried base has not committed, no update starts: it would
	// write the fallback.
	if err := boot.SetTry(d.bootenv, "b", 1); err != nil {
		t.Fatal(err)
	}
	d.reboot()
	if _, err := d.m.Update(UpdateOptions{Assertions: bundle, File: img}); !errors.Is(err, boot.ErrTryInProgress) {
		t.Errorf("during a try: got %v, want ErrTryInProgress", err)
	}
	d.st.Lock()
	n := len(d.st.Changes())
	d.st.Unlock()
	if n != 0 {
		t.Errorf("got %d changes, want none", n)
	}
}

func TestInWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 2, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		w    string
		t    time.Time
		in   bool
		wait time.Duration
	}{
		{"02:00-04:00", at(3, 0), true, 0},
		{"02:00-04:00", at(4, 0), false, 22 * time.Hour},
		{"02:00-04:00", at(1, 30), false, 30 * time.Minute},
		{"23:00-01:00", at(0, 30), true, 0},
		{"23:00-01:00", at(22, 0), false, time.Hour},
		{"now", at(12, 0), true, 0},
	} {
		in, wait := inWindow(tc.w, tc.t)
		if in != tc.in || wait != tc.wait {
			t.Errorf("%s at %s: got %v, %v, want %v, %v", tc.w, tc.t.Format("15:04"), in, wait, tc.in, tc.wait)
		}
	}
	for _, bad := range []string{"2:00-04:00", "02:00-02:00", "02:00", "24:00-01:00", "02:60-03:00"} {
		if err := checkReboot(bad); err == nil {
			t.Errorf("%q: got no error, want one", bad)
		}
	}
}

// TestSetTryAgainInTheTriedBoot pins a bug the power cuts of
// TestApplianceBaseUpdateInQEMU found: a cut after set-try wrote the boot
// environment but before the task was recorded done ran set-try again in
// the tried boot, where boot.SetTry refuses (a try in progress), and the
// update failed instead of committing.
func TestSetTryAgainInTheTriedBoot(t *testing.T) {
	d := newDevice(t)
	img, bundle := d.image("b.img", 2, 5)
	id, err := d.m.Update(UpdateOptions{Assertions: bundle, File: img, Reboot: "never"})
	if err != nil {
		t.Fatal(err)
	}
	d.ensure()
	// The power goes: the state as it was before set-try was done.
	d.st.Lock()
	var setTry *state.Task
	for _, task := range d.st.Change(id).Tasks() {
		switch task.Kind() {
		case "set-try":
			setTry = task
			task.SetStatus(state.DoStatus)
		case "reboot", "commit-base":
			task.SetStatus(state.DoStatus)
		}
	}
	d.st.Unlock()
	if setTry == nil {
		t.Fatal("no set-try task")
	}
	if slot := d.reboot(); slot != "b" {
		t.Fatalf("init booted slot %s, want b", slot)
	}
	d.ensure()
	status, err, _ := d.change(id)
	if status != state.DoneStatus || err != nil {
		t.Fatalf("got change %s (%v), want Done", status, err)
	}
	if e := d.env(); e.Slot != "b" || e.Trying != "" {
		t.Errorf("got bootenv %+v, want slot b committed", e)
	}
}
