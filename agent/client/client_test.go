package client_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/apitest"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/dirs"
)

// agent is a real API server on a socket in a temporary root, with its
// state and a runner the test drives.
type agent struct {
	st     *state.State
	runner *state.Runner
}

func startAgent(t *testing.T) *agent {
	t.Helper()
	a := apitest.Start(t)
	return &agent{st: a.State, runner: a.Runner}
}

// newChange adds a change of kinds tasks, each waiting for the one before.
func (a *agent) newChange(kinds ...string) string {
	a.st.Lock()
	defer a.st.Unlock()
	chg := a.st.NewChange("test", "Test change")
	var prev *state.Task
	for _, k := range kinds {
		t := a.st.NewTask(k, "Run "+k)
		if prev != nil {
			t.WaitFor(prev)
		}
		chg.AddTask(t)
		prev = t
	}
	return chg.ID()
}

func TestErrorAnswers(t *testing.T) {
	startAgent(t)
	c := client.New("")
	forbiddenOr := func(code int) int {
		if os.Geteuid() != 0 {
			return http.StatusForbidden
		}
		return code
	}
	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"app", func() error { _, err := c.App("nope"); return err }, 404, "nope"},
		{"change", func() error { _, err := c.Change("7"); return err }, 404, `"7"`},
		{"revert", func() error { _, err := c.Revert("nope"); return err }, forbiddenOr(404), ""},
		{"remove", func() error { _, err := c.Remove("nope"); return err }, forbiddenOr(404), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want a *client.Error", err, err)
			}
			if e.StatusCode != tt.code {
				t.Errorf("got status %d, want %d", e.StatusCode, tt.code)
			}
			if e.Kind == "" || e.Error() != e.Message || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got kind %q message %q, want a kind and a message with %q", e.Kind, e.Message, tt.msg)
			}
		})
	}
}

func TestLists(t *testing.T) {
	a := startAgent(t)
	c := client.New(dirs.SocketPath)
	apps, err := c.Apps()
	if err != nil || len(apps) != 0 {
		t.Errorf("Apps: got %v, %v, want none", apps, err)
	}
	a.runner.AddHandler("ok", func(*state.Task) error { return nil }, nil)
	done := a.newChange("ok")
	if err := a.runner.Ensure(); err != nil {
		t.Fatal(err)
	}
	waiting := a.newChange("ok")
	for _, tt := range []struct {
		inProgress bool
		want       string
	}{{false, done + "," + waiting}, {true, waiting}} {
		chgs, err := c.Changes(tt.inProgress)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ch := range chgs {
			ids = append(ids, ch.ID)
		}
		if got := strings.Join(ids, ","); got != tt.want {
			t.Errorf("Changes(%v): got %s, want %s", tt.inProgress, got, tt.want)
		}
	}
}

func TestNoAgent(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, sock := range []string{filepath.Join(dir, "missing.sock"), stale} {
		_, err := client.New(sock).Apps()
		if err == nil || !strings.Contains(err.Error(), "is 'paddock daemon' running?") || !strings.Contains(err.Error(), sock) {
			t.Errorf("socket %s: got %v, want it to name the socket and ask whether 'paddock daemon' runs", filepath.Base(sock), err)
		}
	}
}

func TestWait(t *testing.T) {
	a := startAgent(t)
	a.runner.AddHandler("ok", func(*state.Task) error { return nil }, nil)
	a.runner.AddHandler("fail", func(*state.Task) error { return errors.New("the disk is on fire") }, nil)
	c := client.New("")
	tests := []struct {
		name       string
		kinds      []string
		err        string
		status     string
		lastStatus string
	}{
		{"done", []string{"ok", "ok"}, "", "Done", "Done"},
		{"error", []string{"ok", "fail"}, "the disk is on fire", "Error", "Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := a.newChange(tt.kinds...)
			// Run the change once Wait has seen it waiting.
			var once sync.Once
			var seen []string
			ran := make(chan error, 1)
			ci, err := c.Wait(id, func(ci apitypes.ChangeInfo) {
				seen = append(seen, ci.Status)
				once.Do(func() { go func() { ran <- a.runner.Ensure() }() })
			})
			if err := <-ran; err != nil {
				t.Fatal(err)
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got error %v, want %q", err, tt.err)
			}
			if ci.ID != id || !ci.Ready || ci.Status != tt.status {
				t.Errorf("got change %s ready %v status %s, want %s ready %s", ci.ID, ci.Ready, ci.Status, id, tt.status)
			}
			if len(seen) < 2 || seen[0] != "Do" || seen[len(seen)-1] != tt.lastStatus {
				t.Errorf("progress saw %v, want Do first and %s last", seen, tt.lastStatus)
			}
		})
	}
	if _, err := c.Wait("99", nil); err == nil {
		t.Errorf("Wait of an unknown change: got no error")
	}
}

func TestInstall(t *testing.T) {
	startAgent(t)
	dir := t.TempDir()
	pdk := filepath.Join(dir, "hello.pdk")
	// Larger than what a server drains from a request it answered early.
	if err := os.WriteFile(pdk, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdk+".assert", []byte("type: app-revision\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := client.New("")

	_, err := c.Install(pdk, filepath.Join(dir, "missing.assert"), false)
	if err == nil || !strings.Contains(err.Error(), "paddock sign") {
		t.Errorf("missing assertions: got %v, want a hint at 'paddock sign'", err)
	}
	_, err = c.Install(filepath.Join(dir, "missing.pdk"), pdk+".assert", false)
	if err == nil || !strings.Contains(err.Error(), "cannot read package") {
		t.Errorf("missing package: got %v, want cannot read package", err)
	}

	// The agent refuses the upload before reading the package: the client
	// must report the refusal, not a broken connection.
	want := 400
	if os.Geteuid() != 0 {
		want = 403
	}
	for i := range 3 {
		_, err = c.Install(pdk, pdk+".assert", false)
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != want {
			t.Fatalf("attempt %d: got %v (%T), want an answer with status %d", i, err, err, want)
		}
	}
}
