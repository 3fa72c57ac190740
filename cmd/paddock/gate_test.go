package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
)

// gateApp is an app whose web service (busybox httpd on port 8080 of its
// sandbox's loopback) says which revision serves; its health probe asks
// for /health. Revision 2 is broken: its httpd runs, but it has no
// /health (404), so its probe fails while the service stays up.
func gateApp(rev int) map[string]string {
	health := "ok\n"
	if rev == 2 {
		health = ""
	}
	return map[string]string{
		"meta/app.yaml": fmt.Sprintf(`name: web
version: "%d.0"
health-window: 10s
apps:
  web:
    command: bin/web
    daemon: simple
    stop-timeout: 2s
    health:
      http: 8080/health
      interval: 1s
      timeout: 1s
      retries: 2
`, rev),
		"bin/web": fmt.Sprintf(`#!/bin/sh
set -eu
www="$APP_DATA/www"
mkdir -p "$www"
echo "web revision %d" > "$www/index.html"
rm -f "$www/health"
[ -z "%s" ] || echo ok > "$www/health"
exec busybox httpd -f -p 127.0.0.1:8080 -h "$www"
`, rev, strings.TrimSpace(health)),
	}
}

// get asks GET / of the web service of revision rev, on its sandbox's
// loopback, as the agent's probes do.
func getWeb(rev int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pid, err := launch.SandboxPID("web", "web", rev)
	if err != nil {
		return "", err
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (c net.Conn, err error) {
		return launch.DialLoopback(ctx, pid, 8080)
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://web/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(b)), err
}

// waitWeb waits up to within for revision rev's web service to answer
// want, and returns how long it took.
func waitWeb(t *testing.T, rev int, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	var err error
	for time.Since(start) < within {
		if got, err = getWeb(rev); err == nil && got == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("web revision %d: got %q, %v after %s, want %q", rev, got, err, within, want)
	return 0
}

// TestRefreshRevertsUnhealthy refreshes a real service in a real sandbox
// to a revision whose health probe fails: the refresh undoes itself within
// the health window, revision 1 is current again with its data, and its
// service answers again; the change says why.
func TestRefreshRevertsUnhealthy(t *testing.T) {
	needRoot(t)
	testutil.NeedCommand(t, "busybox", "busybox")
	d := newDevice(t)
	d.setupKeys("web")
	one, two := d.packApp("web", gateApp(1), 1), d.packApp("web", gateApp(2), 2)
	d.startDaemon("")
	d.ok("install", one)
	// The test reads the agent's sandbox records under its root.
	old := dirs.Root
	dirs.SetRootDir(d.root)
	t.Cleanup(func() { dirs.SetRootDir(old) })
	waitWeb(t, 1, "web revision 1", 20*time.Second)
	testutil.WriteFile(t, d.path("var/lib/paddock/data/web/1/mark"), "revision 1's data")

	start := time.Now()
	r := d.paddock("refresh", two)
	took := time.Since(start)
	if r.code == 0 || !strings.Contains(r.stderr, "health check failed: http probe of web failed (2 of 2)") {
		t.Fatalf("refresh to the broken revision: got exit %d\n%s%s\nwant a failure saying the health check failed\nagent log:\n%s", r.code, r.stdout, r.stderr, d.daemonLog)
	}
	if took > 10*time.Second+5*time.Second {
		t.Errorf("the refresh took %s to undo itself, want it within its 10s window (and the undo)", took)
	}
	again := waitWeb(t, 1, "web revision 1", 10*time.Second)
	t.Logf("refresh to the broken revision reverted in %s; revision 1's service answered again %s later", took.Round(time.Millisecond), again.Round(time.Millisecond))

	if apps := d.list(); len(apps) != 1 || apps[0].Revision != 1 || len(apps[0].Revisions) != 1 {
		t.Errorf("got apps %+v, want web at revision 1 alone", apps)
	}
	if !pathExists(d.path("var/lib/paddock/data/web/1/mark")) || pathExists(d.path("var/lib/paddock/data/web/2")) {
		t.Errorf("want revision 1's data kept and revision 2's gone")
	}
	s := d.services()["web.web"]
	if s.Revision != 1 || s.State != apitypes.ServiceRunning {
		t.Errorf("got service %+v, want revision 1 running", s)
	}
	changes := d.ok("changes")
	id := ""
	for _, l := range strings.Split(changes, "\n") {
		if strings.Contains(l, "Refresh") {
			id = strings.Fields(l)[0]
		}
	}
	if out := d.ok("changes", id); !strings.Contains(out, "reverted: health check failed: http probe of web failed (2 of 2)") ||
		!strings.Contains(out, "revision 1 is current again and its services run") {
		t.Errorf("change %s: got\n%s\nwant its log to say it was reverted, and why", id, out)
	}
}

func pathExists(p string) bool { _, err := os.Lstat(p); return err == nil }
