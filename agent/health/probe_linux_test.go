package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/manifest"
)

// The test binary is also the app of the probe tests: with netnsServer
// set, it serves HTTP on loopback in a network namespace of its own.
const netnsServer = "PADDOCK_TEST_NETNS_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(netnsServer) != "" {
		serveInNetns()
		return
	}
	os.Exit(m.Run())
}

// serveInNetns brings up loopback, listens on a free port of it, says the
// port on stdout, and serves /ok (200) and /bad (503) until killed.
func serveInNetns() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		ifr, _ := unix.NewIfreq("lo")
		if err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err == nil {
			ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
			err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
		}
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "fine") })
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sick", http.StatusServiceUnavailable) })
	http.Serve(l, mux)
}

// startNetnsServer starts the server in a new network namespace and
// returns its PID and port; it is killed when the test ends.
func startNetnsServer(t *testing.T) (int, int) {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces")
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), netnsServer+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("the server in its namespace did not start: %q, %v", line, err)
	}
	return cmd.Process.Pid, port
}

// TestConnectionProbes runs the real tcp and http probes against a real
// server on the loopback of its own network namespace, as an app's
// sandbox has: they reach it there, and the agent's own loopback does not
// have it.
func TestConnectionProbes(t *testing.T) {
	pid, port := startNetnsServer(t)
	testutil.Replace(t, &sandboxPID, func(app, cmd string, rev int) (int, error) {
		if app != "web" || cmd != "web" || rev != 3 {
			return 0, fmt.Errorf("the sandbox of %s.%s revision %d is not running", app, cmd, rev)
		}
		return pid, nil
	})
	// The port is the namespace's own: the host's loopback does not answer
	// there (unless something else happens to listen on it).
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		c.Close()
		t.Logf("something on the host's loopback listens on %d too", port)
	}
	spec := func(h manifest.Health) probeSpec {
		h.Timeout = 5 * time.Second
		return probeSpec{Command: "web", Check: h}
	}
	tests := []struct {
		name string
		rev  int
		h    manifest.Health
		want string // "" for success
	}{
		{"tcp", 3, manifest.Health{TCP: port}, ""},
		{"tcp closed port", 3, manifest.Health{TCP: closedPort(port)}, "connection refused"},
		{"http ok", 3, manifest.Health{HTTP: strconv.Itoa(port) + "/ok"}, ""},
		{"http 503", 3, manifest.Health{HTTP: strconv.Itoa(port) + "/bad"}, "GET /bad answered 503 Service Unavailable"},
		{"http 404", 3, manifest.Health{HTTP: strconv.Itoa(port) + "/nothing"}, "answered 404"},
		{"no sandbox", 4, manifest.Health{TCP: port}, "the sandbox of web.web revision 4 is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := realRunner{}.run(ctx, "web", tt.rev, spec(tt.h))
			t.Logf("probe took %v", time.Since(start))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// closedPort returns a port next to port that nothing in the server's
// namespace listens on (it listens on one port only).
func closedPort(port int) int {
	if port == 65535 {
		return port - 1
	}
	return port + 1
}

// TestDialLoopbackKeepsNamespace checks that the agent's threads stay in
// its own network namespace after probes joined another.
func TestDialLoopbackKeepsNamespace(t *testing.T) {
	pid, port := startNetnsServer(t)
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c, err := dialLoopbackTo(pid, port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err == nil && ns != self {
			t.Errorf("thread %s is in %s, want the agent's %s", task.Name(), ns, self)
		}
	}
}

func dialLoopbackTo(pid, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testPID := func(string, string, int) (int, error) { return pid, nil }
	old := sandboxPID
	sandboxPID = testPID
	defer func() { sandboxPID = old }()
	return dialApp(ctx, "web", "web", 1, port)
}
