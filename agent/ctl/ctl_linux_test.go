package ctl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// childEnv makes the test binary a caller of the socket: it waits for a
// line on stdin (sent once it is where the test wants it), then runs
// 'paddock ctl' with its arguments and prints the error or "ok".
const childEnv = "PADDOCK_CTL_TEST_SOCKET"

// roundsEnv makes the child call 100 times and say the mean round trip.
const roundsEnv = "PADDOCK_CTL_TEST_ROUNDS"

func TestMain(m *testing.M) {
	if sock := os.Getenv(childEnv); sock != "" {
		bufio.NewReader(os.Stdin).ReadString('\n')
		n := 1
		if os.Getenv(roundsEnv) != "" {
			n = 100
		}
		c := client.New(sock)
		start := time.Now()
		for range n {
			if err := c.SetHealth(os.Args[1], os.Args[2]); err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
		}
		fmt.Printf("ok %v a round trip\n", time.Since(start)/time.Duration(n))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// healthRecorder records what the socket sets.
type healthRecorder struct {
	mu  sync.Mutex
	set map[string]string
}

func (h *healthRecorder) Set(app string, src health.Source, key string, st health.Status, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.set[app] = fmt.Sprintf("%s %s %s", src, st, msg)
}

func (h *healthRecorder) get(app string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set[app]
}

// serve starts the in-app socket of a temporary root, where uid 70101 is
// app a and 70102 app b.
func serve(t *testing.T) (string, *healthRecorder) {
	t.Helper()
	dirstest.SetRoot(t)
	rec := &healthRecorder{set: map[string]string{}}
	s := New(slog.New(slog.DiscardHandler), cgroup.ParentFor(dirs.Root))
	s.AppOfUID = func(uid int) (string, bool) {
		switch uid {
		case 70101:
			return "a", true
		case 70102:
			return "b", true
		}
		return "", false
	}
	s.Health = rec
	sock := filepath.Join(dirs.CtlSocketDir, dirs.CtlSocketName)
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	// Other users must reach the socket through the temporary root.
	for p := sock; p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			os.Chmod(p, fi.Mode().Perm()|0o011)
		}
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return sock, rec
}

// call runs the child as uid, moved into the cgroup group first when
// group is not empty, and returns what it printed.
func call(t *testing.T, sock string, uid int, group, status, msg string) string {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", status, msg)
	cmd.Env = append(os.Environ(), childEnv+"="+sock)
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if group != "" {
		g, err := cgroup.Ensure(group, cgroup.Spec{Devices: []cgroup.DeviceRule{}})
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(err)
		}
		t.Cleanup(func() { removeParent(t) })
		t.Cleanup(func() { cgroup.Delete(group) })
		if err := g.AddProc(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(err)
		}
	}
	io.WriteString(in, "go\n")
	in.Close()
	cmd.Wait()
	return strings.TrimSpace(out.String())
}

// TestCtlKnowsItsCaller pins that an app speaks only for itself through
// the in-app socket: the agent names the caller by the kernel's peer
// credentials and the caller's cgroup, never by what it says, and refuses
// root, users of no app, and an app's user outside the app's sandboxes.
func TestCtlKnowsItsCaller(t *testing.T) {
	testutil.NeedRoot(t, "processes of other users and cgroups")
	if cgroup.Mode() == "none" {
		t.Skip("no cgroup hierarchy")
	}
	sock, rec := serve(t)
	tests := []struct {
		name  string
		uid   int
		group string
		want  string
		app   string // whose health the call set, if any
	}{
		{"root", 0, "", "root is no app", ""},
		{"a user of no app", 70199, "", "uid 70199 is no installed app's user", ""},
		{"b's user outside b's sandboxes", 70102, "", "process", ""},
		{"b's user in a's sandbox", 70102, "paddock.a.web", "is not in one of b's sandboxes", ""},
		{"a in its sandbox", 70101, "paddock.a.web", "ok", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, sock, tt.uid, tt.group, "error", "set by "+tt.name)
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if tt.want != "ok" && !strings.Contains(got, "paddock ctl speaks for an app") {
				t.Errorf("refusal %q does not say what paddock ctl is for", got)
			}
		})
	}
	// The round trip of a request the agent takes (each one identified
	// again: credentials and cgroup).
	t.Setenv(roundsEnv, "1")
	if got := call(t, sock, 70101, "paddock.a.web", "okay", "fast"); !strings.HasPrefix(got, "ok ") {
		t.Errorf("100 calls: got %q", got)
	} else {
		t.Logf("in-app socket: %s", got[3:])
	}
	if got := rec.get("a"); got != "ctl okay fast" {
		t.Errorf("a's health: got %q, want the last one a set", got)
	}
	if got := rec.get("b"); got != "" {
		t.Errorf("b's health: got %q, want none: nobody may speak for b", got)
	}
}

// TestCtlRefusesBadRequests checks the requests an app may send wrong.
func TestCtlRefusesBadRequests(t *testing.T) {
	testutil.NeedRoot(t, "processes of other users and cgroups")
	sock, _ := serve(t)
	if got := call(t, sock, 70101, "paddock.a.web", "fine", ""); !strings.Contains(got, `unknown health status "fine" (want okay, waiting or error)`) {
		t.Errorf("got %q, want the status refused", got)
	}
	err := client.New(sock+".none").SetHealth("okay", "")
	if err == nil || !strings.Contains(err.Error(), "is 'paddock daemon' running?") {
		t.Errorf("got %v, want the agent not running", err)
	}
}

// removeParent removes the test root's parent group in every hierarchy.
func removeParent(t *testing.T) {
	parents, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup.ParentFor(dirs.Root)))
	for _, p := range parents {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Errorf("cleanup: cannot remove cgroup %s: %v", p, err)
		}
	}
}
