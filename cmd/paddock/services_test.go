package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
)

// svcApp is an app of services that show what supervision does.
var svcApp = map[string]string{
	"meta/app.yaml": `name: svc
version: "1"
apps:
  crash:
    command: bin/crash
    daemon: simple
  once:
    command: bin/once
    daemon: oneshot
  stubborn:
    command: bin/stubborn
    daemon: simple
    stop-timeout: 1s
  ready:
    command: bin/ready
    daemon: notify
  web:
    command: bin/web
    daemon: simple
    after: [ready]
`,
	// crash fails at once, every time.
	"bin/crash": "#!/bin/sh\necho crash starts\nexit 3\n",
	// once does its work and ends well.
	"bin/once": "#!/bin/sh\necho once ran\n",
	// stubborn ignores SIGTERM, and so do its child and the child it puts
	// in a session of its own, out of the service's process group.
	"bin/stubborn": "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > \"$APP_DATA/child\"\nsetsid sleep 1001 &\necho $! > \"$APP_DATA/escaped\"\necho stubborn starts\nwait\nwait\n",
	// ready says so on its notify pipe after a second.
	"bin/ready": "#!/bin/sh\nsleep 1\necho ready now\necho READY=1 >&3\nexec sleep 1000\n",
	// web runs after ready.
	"bin/web": "#!/bin/sh\necho web starts\nexec sleep 1000\n",
}

// packApp writes files as an app's source, packs it and signs it as
// revision rev, and returns the package's file name.
func (d *device) packApp(name string, files map[string]string, rev int) string {
	d.t.Helper()
	src := filepath.Join(d.work, fmt.Sprintf("src-%s-%d", name, rev))
	for p, content := range files {
		path := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			d.t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			d.t.Fatal(err)
		}
	}
	out := fmt.Sprintf("%s-%d.pdk", name, rev)
	d.ok("pack", src, "-o", out)
	d.ok("sign", out, "--key", "pub", "--revision", fmt.Sprint(rev), "--delegation", "pub.delegation")
	return out
}

// packExample packs examples/NAME and signs it as revision rev with a
// delegation of its own, and returns the package's file name.
func (d *device) packExample(name string, rev int) string {
	d.t.Helper()
	d.ok("key", "delegate", "--key", "root", "--to", "pub", "--names", name, "-o", name+".delegation")
	out := fmt.Sprintf("%s-%d.pdk", name, rev)
	d.ok("pack", filepath.Join(examples, name), "-o", out)
	d.ok("sign", out, "--key", "pub", "--revision", fmt.Sprint(rev), "--delegation", name+".delegation")
	return out
}

// services returns what 'paddock services --json' says, by APP.SVC.
func (d *device) services() map[string]apitypes.ServiceInfo {
	d.t.Helper()
	var list []apitypes.ServiceInfo
	if err := json.Unmarshal([]byte(d.ok("services", "--json")), &list); err != nil {
		d.t.Fatal(err)
	}
	out := map[string]apitypes.ServiceInfo{}
	for _, s := range list {
		out[s.App+"."+s.Service] = s
	}
	return out
}

// waitService waits until cond holds of service key, and returns it.
func (d *device) waitService(key, what string, cond func(apitypes.ServiceInfo) bool) apitypes.ServiceInfo {
	d.t.Helper()
	var s apitypes.ServiceInfo
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(100 * time.Millisecond) {
		if s = d.services()[key]; cond(s) {
			return s
		}
	}
	d.t.Fatalf("%s: not %s after 30s: %+v\nagent log:\n%s", key, what, s, d.daemonLog)
	return s
}

func running(s apitypes.ServiceInfo) bool { return s.State == apitypes.ServiceRunning && s.PID > 0 }

// TestServices runs real services in real sandboxes under a real agent:
// restarts with growing delays, a oneshot left alone, after: and notify,
// stop escalating to SIGKILL for the whole group and staying stopped across
// an agent restart, and re-adoption after a kill -9 of the agent.
func TestServices(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	d.setupKeys("svc")
	pdk := d.packApp("svc", svcApp, 1)
	d.startDaemon("")
	d.ok("install", pdk)

	t.Run("crash restarts with growing delays", func(t *testing.T) {
		s := d.waitService("svc.crash", "in a crash loop", func(s apitypes.ServiceInfo) bool { return s.CrashLoop })
		if s.Restarts < 5 || s.LastExit == nil || s.LastExit.Code != 3 {
			t.Errorf("got %d restarts, last exit %+v; want at least 5 and status 3", s.Restarts, s.LastExit)
		}
		var starts []time.Time
		for _, l := range d.logLines("svc.crash") {
			if l.Text == "crash starts" {
				starts = append(starts, l.Time)
			}
		}
		if len(starts) < 5 {
			t.Fatalf("got %d starts in the log, want at least 5", len(starts))
		}
		// The delays before restarts 2, 3 and 4: 250ms, 500ms, 1s at least.
		for i, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
			if gap := starts[i+2].Sub(starts[i+1]); gap < want {
				t.Errorf("restart %d came %v after the one before, want at least %v", i+2, gap, want)
			}
		}
	})

	t.Run("oneshot that ends well is not restarted", func(t *testing.T) {
		s := d.waitService("svc.once", "exited", func(s apitypes.ServiceInfo) bool { return s.State == apitypes.ServiceExited })
		time.Sleep(time.Second)
		if s = d.services()["svc.once"]; s.State != apitypes.ServiceExited || s.Restarts != 0 || s.LastExit == nil || s.LastExit.Code != 0 {
			t.Errorf("got %+v, want exited with status 0 and no restart", s)
		}
	})

	t.Run("notify and after", func(t *testing.T) {
		d.waitService("svc.web", "running", running)
		var readyAt, webAt time.Time
		for _, l := range d.logLines("svc") {
			switch l.Text {
			case "ready now":
				readyAt = l.Time
			case "web starts":
				webAt = l.Time
			}
		}
		if readyAt.IsZero() || webAt.Before(readyAt) {
			t.Errorf("web started at %v, ready said so at %v; want web after ready", webAt, readyAt)
		}
	})

	t.Run("stop escalates to SIGKILL for the group", func(t *testing.T) {
		d.waitService("svc.stubborn", "running", running)
		child := d.dataPID(t, "svc.stubborn", "child")
		escaped := d.dataPID(t, "svc.stubborn", "escaped")
		start := time.Now()
		d.ok("stop", "svc.stubborn")
		if took := time.Since(start); took < time.Second {
			t.Errorf("stop took %v, want at least the stop-timeout of 1s (SIGTERM is ignored)", took)
		}
		// SIGKILL was sent to the group; the kernel ends its processes soon after.
		for start := time.Now(); alive(child) && time.Since(start) < 5*time.Second; {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(child) {
			t.Errorf("the service's child %d outlived the stop by 5s", child)
		}
		// Regression: a process in a session of its own (setsid) is out of
		// the launcher's group and outlived the stop; the stop now ends it
		// through the command's cgroup (failed before: "outlived the stop").
		for start := time.Now(); alive(escaped) && time.Since(start) < 5*time.Second; {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(escaped) {
			t.Errorf("the service's process %d in a session of its own outlived the stop by 5s", escaped)
		}
		if s := d.services()["svc.stubborn"]; s.State != apitypes.ServiceStopped || s.Enabled || s.PID != 0 {
			t.Errorf("got %+v, want stopped, disabled, no process", s)
		}
	})

	t.Run("survives kill -9 of the agent", func(t *testing.T) {
		before := d.waitService("svc.web", "running", running)
		d.daemon.Process.Signal(syscall.SIGKILL)
		d.waitDaemonExit()
		if !alive(before.PID) {
			t.Fatalf("service %d died with the agent", before.PID)
		}
		d.startDaemon("")
		after := d.waitService("svc.web", "re-adopted", running)
		if after.PID != before.PID {
			t.Errorf("got pid %d after the agent's restart, want %d (the same process)", after.PID, before.PID)
		}
		if s := d.services()["svc.stubborn"]; s.State != apitypes.ServiceStopped || s.Enabled {
			t.Errorf("stubborn after the agent's restart: got %+v, want stopped and disabled", s)
		}
		// A crash after the re-adoption is still seen, and restarted.
		syscall.Kill(after.PID, syscall.SIGKILL)
		again := d.waitService("svc.web", "restarted", func(s apitypes.ServiceInfo) bool { return running(s) && s.PID != after.PID })
		if again.Restarts != after.Restarts+1 || again.LastExit == nil || again.LastExit.Code != 128+9 {
			t.Errorf("got %d restarts and last exit %+v, want %d and status 137", again.Restarts, again.LastExit, after.Restarts+1)
		}
	})

	t.Run("start after stop", func(t *testing.T) {
		d.ok("start", "svc.stubborn")
		d.waitService("svc.stubborn", "running", running)
		out := d.ok("logs", "svc.stubborn", "-n", "1")
		if !strings.Contains(out, "stubborn starts") {
			t.Errorf("paddock logs svc.stubborn -n 1: got %q, want the line it wrote", out)
		}
	})

	t.Run("remove ends the services for good", func(t *testing.T) {
		web := d.waitService("svc.web", "running", running)
		d.ok("remove", "svc")
		for start := time.Now(); len(d.services()) > 0; time.Sleep(100 * time.Millisecond) {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("services still listed 30s after the remove: %+v", d.services())
			}
		}
		if alive(web.PID) {
			t.Errorf("web %d outlived the remove", web.PID)
		}
		if out, _ := exec.Command("pgrep", "-f", "^paddock run svc\\.").Output(); len(out) > 0 {
			t.Errorf("launchers of svc outlived the remove: %s", out)
		}
		if _, err := os.Stat(d.path("var/lib/paddock/logs/svc")); !os.IsNotExist(err) {
			t.Errorf("the logs of svc outlived the remove (%v)", err)
		}
	})
}

// logLines returns the lines of target's logs.
func (d *device) logLines(target string) []apitypes.LogLine {
	d.t.Helper()
	var lines []apitypes.LogLine
	if err := json.Unmarshal([]byte(d.ok("logs", target, "-n", "0", "--json")), &lines); err != nil {
		d.t.Fatal(err)
	}
	return lines
}

// dataPID reads a PID that the service key wrote into its data, in the
// PID namespace of its sandbox, and returns its host PID.
func (d *device) dataPID(t *testing.T, key, name string) int {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(d.path("var/lib/paddock/data/svc/1/" + name))
		var pid int
		if err == nil {
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				// Written in the sandbox's PID namespace, the one of the
				// service's main process: find its host PID there.
				if host := hostPID(pidNS(d.services()[key].PID), pid, "sleep"); host > 0 {
					return host
				}
			}
		}
	}
	t.Fatalf("the service did not write %s", name)
	return 0
}

// pidNS names the PID namespace of pid ("pid:[INODE]"), or "" when it has
// none (no such process).
func pidNS(pid int) string {
	if pid <= 0 {
		return ""
	}
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	return ns
}

// hostPID finds the host PID of the process of the PID namespace ns whose
// PID there is nspid and whose command is comm, or 0. Every sandbox has a
// PID namespace of its own, where PIDs start at 1 again: the namespace
// tells apart a service's "sleep" at PID 3 from another sandbox's.
func hostPID(ns string, nspid int, comm string) int {
	if ns == "" {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "Name:\t"+comm+"\n") {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == fmt.Sprint(nspid) {
				var pid int
				fmt.Sscan(f[1], &pid)
				if pidNS(pid) == ns {
					return pid
				}
			}
		}
	}
	return 0
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestHostPIDTellsSandboxesApart pins the flake of "stop escalates to
// SIGKILL for the group" ("the service's child 6750 outlived the stop by
// 5s"): hostPID took the first "sleep" of any PID namespace whose PID there
// was the one stubborn wrote, and every sandbox numbers its processes from
// 1 again, so a sleep of another sandbox (another test's, run at the same
// time) with the same PID was taken for stubborn's child and of course
// outlived its stop. Here a decoy sleep with the same namespaced PID starts
// first (so the old hostPID found it first).
func TestHostPIDTellsSandboxesApart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("new PID namespaces need root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	// sleepInNS starts a sleep as PID 1 of a new PID namespace and returns its host PID.
	sleepInNS := func() int {
		c := exec.Command("unshare", "--pid", "--fork", "--kill-child", "sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
			if pid := childOf(c.Process.Pid); pid > 0 && pidNS(pid) != pidNS(os.Getpid()) && processName(pid) == "sleep" {
				return pid
			}
		}
		t.Fatalf("unshare %d started no sleep in a new PID namespace", c.Process.Pid)
		return 0
	}
	decoy := sleepInNS()
	target := sleepInNS()
	if got := hostPID(pidNS(target), 1, "sleep"); got != target {
		t.Errorf("hostPID of sleep 1 in the namespace of %d: got %d, want %d (the decoy is %d)", target, got, target, decoy)
	}
	if got := hostPID(pidNS(decoy), 1, "sleep"); got != decoy {
		t.Errorf("hostPID of sleep 1 in the namespace of %d: got %d, want %d", decoy, got, decoy)
	}
}

// childOf returns a child of pid, or 0.
func childOf(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		var child int
		if _, err := fmt.Sscan(string(b), &child); err == nil {
			return child
		}
	}
	return 0
}

// processName is the command name of pid (its comm).
func processName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
