package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/localapi"
	"paddock.dev/paddock/internal/testutil"
)

// helperEnv makes the test binary a helper client (see TestMain), run as
// another user by TestConnectionLimitsOverSocket.
const helperEnv = "PADDOCK_API_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		os.Exit(helperHold(os.Getenv("SOCK"), os.Getenv("N")))
	case "get":
		os.Exit(helperGet(os.Getenv("SOCK")))
	}
	fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
	os.Exit(2)
}

// holdReport is what the hold helper prints.
type holdReport struct {
	OK, Refused int
	Message     string
	Seconds     float64
}

// helperHold opens n connections to sock, sends one request on each and
// keeps those that were answered 200 open, as an attacker would; it prints
// a holdReport, then waits for stdin to close.
func helperHold(sock, count string) int {
	n, _ := strconv.Atoi(count)
	var rep holdReport
	var held []net.Conn
	start := time.Now()
	for range n {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /v1/apps HTTP/1.1\r\nHost: paddock\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var r apitypes.Response
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			rep.OK++
			c.SetDeadline(time.Time{})
			held = append(held, c)
			continue
		}
		rep.Refused++
		var e apitypes.ErrorResult
		json.Unmarshal(r.Result, &e)
		rep.Message = e.Message
		c.Close()
	}
	rep.Seconds = time.Since(start).Seconds()
	json.NewEncoder(os.Stdout).Encode(rep)
	bufio.NewReader(os.Stdin).ReadByte()
	return 0
}

// helperGet sends one request to sock and prints the HTTP status.
func helperGet(sock string) int {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /v1/apps HTTP/1.1\r\nHost: paddock\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(resp.StatusCode)
	return 0
}

// asUser returns a command that runs this test binary as helper mode with
// uid and gid, and env.
func asUser(uid uint32, mode string, env ...string) *exec.Cmd {
	// /proc/self/exe reaches the binary even where the user cannot walk
	// go test's private build folder.
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+mode)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return cmd
}

// TestConnectionLimitsOverSocket pins issue 9 item 3: any local user could
// open and hold connections to the API socket until the agent ran out of
// file descriptors (about 21,000 idle connections), after which its next
// checkpoint panicked. Here a user other than root opens more than its
// limit over the real socket: the connections past the limit are answered
// 503 and closed at once, another user's request still succeeds, and the
// held connections are closed once idle, giving their slots back.
func TestConnectionLimitsOverSocket(t *testing.T) {
	testutil.NeedRoot(t, "run clients as other users")
	testutil.Replace(t, &idleTimeout, 2*time.Second)
	s, _ := newServer(t)
	s.Limits = localapi.Limits{PerUID: 4, Total: 8, RootReserve: 2}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "api.sock")
	serveOn(t, s, sock)

	const nobody = 65534
	hold := asUser(nobody, "hold", "SOCK="+sock, "N=10")
	stdin, err := hold.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	hold.Stderr = os.Stderr
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		hold.Wait()
	})
	var rep holdReport
	if err := json.NewDecoder(stdout).Decode(&rep); err != nil {
		t.Fatalf("cannot read the helper's report: %v", err)
	}
	if rep.OK != 4 || rep.Refused != 6 {
		t.Errorf("uid %d opening 10 connections: got %d held, %d refused, want 4 and 6", nobody, rep.OK, rep.Refused)
	}
	if !strings.Contains(rep.Message, "too many connections") || !strings.Contains(rep.Message, "uid 65534") {
		t.Errorf("got refusal %q, want one naming too many connections from uid %d", rep.Message, nobody)
	}
	if rep.Seconds > 5 {
		t.Errorf("the 10 connections took %.1fs, want the refusals at once", rep.Seconds)
	}

	// Another user, and root, still get answers.
	out, err := asUser(nobody-1, "get", "SOCK="+sock).Output()
	if err != nil || strings.TrimSpace(string(out)) != "200" {
		t.Errorf("uid %d while uid %d holds its limit: got %q, %v, want 200", nobody-1, nobody, out, err)
	}
	if code := getAsRoot(t, sock); code != http.StatusOK {
		t.Errorf("root while uid %d holds its limit: got %d, want 200", nobody, code)
	}

	// The held connections are idle: the server closes them.
	ll := s.listen.(*localapi.Listener)
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := ll.Open(nobody); n > 0; n, _ = ll.Open(nobody) {
		if time.Now().After(deadline) {
			t.Fatalf("uid %d still holds %d connections 10s after they went idle (idle timeout %s)", nobody, n, idleTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getAsRoot(t *testing.T, sock string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://paddock/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUploadTimeouts checks that the read timeout, which ends requests that
// do not arrive whole (issue 9 item 3), does not cut an upload that is
// slower than it but keeps coming, and that an upload that stalls ends.
func TestUploadTimeouts(t *testing.T) {
	testutil.NeedRoot(t, "upload")
	testutil.Replace(t, &readTimeout, 300*time.Millisecond)
	testutil.Replace(t, &uploadStall, 600*time.Millisecond)
	s, _ := newServer(t)
	sock := serveSocket(t, s)
	// upload sends a multipart body whose assertions part comes in chunks
	// with pause between them, and returns the answer's error message.
	upload := func(chunks int, pause time.Duration) string {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "POST /v1/apps HTTP/1.1\r\nHost: paddock\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := func(s string) { fmt.Fprintf(c, "%x\r\n%s\r\n", len(s), s) }
		chunk("--B\r\nContent-Disposition: form-data; name=\"assertions\"\r\n\r\n")
		for range chunks {
			time.Sleep(pause)
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", 1, "x"); err != nil {
				break // the server gave up
			}
		}
		chunk("\r\n--B\r\nContent-Disposition: form-data; name=\"package\"\r\n\r\nP\r\n--B--\r\n")
		fmt.Fprint(c, "0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var r apitypes.Response
		var e apitypes.ErrorResult
		json.NewDecoder(resp.Body).Decode(&r)
		json.Unmarshal(r.Result, &e)
		return e.Message
	}
	// 12 chunks 100 ms apart: four times the read timeout, never stalled.
	if got := upload(12, 100*time.Millisecond); !strings.Contains(got, "cannot install") {
		t.Errorf("slow upload: got %q, want it read whole and its assertions checked", got)
	}
	// A pause longer than the stall limit ends the upload.
	if got := upload(2, 1500*time.Millisecond); strings.Contains(got, "cannot install") {
		t.Errorf("stalled upload: got %q, want it cut", got)
	}
}
