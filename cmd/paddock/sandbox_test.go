package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// TestKeptSandboxEnds pins issue 9's "kept sandbox inits outlive the
// agent": a kept sandbox's init ran until killed, so after the agent stopped
// (and its root was deleted) it held the namespaces, the mounts, and so the
// loop devices of the packages, forever. Now an idle init ends after its
// idle timeout, but not while an app process runs in it; the agent's stop
// ends an idle one at once; and once the agent's own mounts are gone no loop
// device is left backed by a package. It failed before the fix: the init was
// still there after the timeout.
func TestKeptSandboxEnds(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d)

	// An orphan keeps the sandbox busy for 2s; then it is idle for 1s.
	cmd := runEscapeCmd(d, false, "orphan")
	cmd.Env = append(cmd.Env, "PADDOCK_SANDBOX_IDLE=1s")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "orphan: allowed") {
		t.Fatalf("paddock run escape orphan: %v\n%s", err, out)
	}
	init := sandboxInit(t, d, "escape", "escape", 1)
	orphan := adoptedOrphan(t)
	if orphan == 0 {
		t.Fatalf("no sleep adopted by the sandbox's init (ps: %s)", psTree())
	}
	for procState(orphan) != "" {
		if procState(init) == "" {
			t.Fatalf("the sandbox's init %d ended while the orphan %d still ran in it", init, orphan)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !waitGone(init, 10*time.Second) {
		t.Errorf("the sandbox's init %d still runs 10s after its last process ended, with an idle timeout of 1s", init)
	}

	// The next launch builds the sandbox again (the fast path finds the
	// record stale); the agent's stop then ends it, idle, at once.
	if out, err := runEscapeCmd(d, true, "exec").CombinedOutput(); err != nil || !strings.Contains(string(out), "exec: allowed") {
		t.Fatalf("paddock run escape exec after the sandbox ended: %v\n%s", err, out)
	}
	again := sandboxInit(t, d, "escape", "escape", 1)
	if again == init {
		t.Fatalf("the launch after the sandbox ended used the old init %d", init)
	}
	d.stopDaemon()
	if !waitGone(again, 5*time.Second) {
		t.Errorf("the idle sandbox's init %d still runs 5s after the agent stopped", again)
	}

	// Nothing holds a package once the agent's mounts are gone.
	d.unmountAll()
	deadline := time.Now().Add(5 * time.Second)
	for held := loopsUnder(d.root); len(held) > 0; held = loopsUnder(d.root) {
		if time.Now().After(deadline) {
			t.Errorf("loop devices still backed by packages after the agent stopped and unmounted: %s", strings.Join(held, ", "))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sandboxInit returns the PID of the init of the kept sandbox of app.cmd
// revision rev, from its record.
func sandboxInit(t *testing.T, d *device, app, cmd string, rev int) int {
	t.Helper()
	var rec struct {
		PID int `json:"pid"`
	}
	path := d.path(filepath.Join("run/paddock/ns", "paddock."+app+"."+cmd+"."+strconv.Itoa(rev)+".json"))
	if err := json.Unmarshal([]byte(testutil.ReadFile(t, path)), &rec); err != nil || rec.PID <= 0 {
		t.Fatalf("record of the sandbox of %s.%s: %v (pid %d)", app, cmd, err, rec.PID)
	}
	if procState(rec.PID) == "" {
		t.Fatalf("the init %d of the sandbox of %s.%s does not run", rec.PID, app, cmd)
	}
	return rec.PID
}

// waitGone waits up to d for pid to be gone (a zombie counts as gone: its
// parent is the launcher that has exited, or the test's reaper).
func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := procState(pid); s == "" || s == "Z" {
			return true
		}
	}
	return false
}

// loopsUnder lists the loop devices whose backing file lies under root.
func loopsUnder(root string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var held []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), root+"/") {
			held = append(held, filepath.Base(filepath.Dir(filepath.Dir(f)))+" ("+strings.TrimSpace(string(b))+")")
		}
	}
	return held
}
