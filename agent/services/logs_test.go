package services

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/dirs/dirstest"
)

// writeToLog opens the service's pipe as a launcher does and writes lines to it.
func writeToLog(t *testing.T, key string, lines []string) {
	t.Helper()
	w, err := openPipe(fifoPath(key), true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLog waits until the log holds a line containing want.
func waitLog(t *testing.T, path string, files int, want string) []string {
	t.Helper()
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(20 * time.Millisecond) {
		lines, _ := readLines(path, files, 0)
		if len(lines) > 0 && strings.Contains(lines[len(lines)-1], want) {
			return lines
		}
	}
	t.Fatalf("the log %s never got %q", path, want)
	return nil
}

func newTestLog(t *testing.T, lim LogLimits) *serviceLog {
	t.Helper()
	dirstest.SetRoot(t)
	if err := os.MkdirAll(runDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := openServiceLog("app", "svc", lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// TestLogRotates checks that a service's log stays within its bound: it
// is rotated at MaxSize, and only Files files are kept.
func TestLogRotates(t *testing.T) {
	lim := LogLimits{MaxSize: 4096, Files: 2, Rate: 1 << 30, Burst: 1 << 30, MaxLine: 4096}
	newTestLog(t, lim)
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 40)))
	}
	lines = append(lines, "the end")
	writeToLog(t, "app.svc", lines)
	got := waitLog(t, LogPath("app", "svc"), 3, "the end")
	for _, p := range []string{LogPath("app", "svc"), LogPath("app", "svc") + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > lim.MaxSize {
			t.Errorf("%s is %d bytes, want at most %d", p, fi.Size(), lim.MaxSize)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (root only)", p, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(LogPath("app", "svc") + ".2"); !os.IsNotExist(err) {
		t.Errorf("got a third log file (%v), want 2 files kept", err)
	}
	// What is kept is the newest lines, in order, each with its time.
	if len(got) < 50 || len(got) > 200 {
		t.Errorf("got %d lines kept, want between 50 and 200 of 501", len(got))
	}
	for i, l := range got {
		if _, err := time.Parse(timeFormat, strings.Fields(l)[0]); err != nil {
			t.Errorf("line %d %q has no time: %v", i, l, err)
		}
	}
	if fi, _ := os.Stat(LogsDir()); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", LogsDir(), fi.Mode().Perm())
	}
}

// TestLogDropsFlood checks that a service writing faster than its log's
// rate has lines dropped, not written, and the log says how many; the
// writer is never blocked (the pipe is drained).
func TestLogDropsFlood(t *testing.T) {
	// The clock stands still while the flood comes, then moves on 10s.
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixNano())
	old := timeNow
	timeNow = func() time.Time { return time.Unix(0, clock.Load()) }
	t.Cleanup(func() { timeNow = old })
	lim := LogLimits{MaxSize: 1 << 20, Files: 2, Rate: 1000, Burst: 2000, MaxLine: 4096}
	newTestLog(t, lim)
	var lines []string
	for i := range 20000 {
		lines = append(lines, fmt.Sprintf("flood %05d", i))
	}
	done := make(chan struct{})
	go func() {
		writeToLog(t, "app.svc", lines)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the writer was blocked: the agent does not drain the pipe")
	}
	// Wait until the agent has read all of it (the last line is dropped
	// too), then let the budget refill: the count of dropped lines comes
	// before the next line.
	waitDrained(t, "app.svc")
	clock.Add(int64(10 * time.Second))
	writeToLog(t, "app.svc", []string{"after the flood"})
	got := waitLog(t, LogPath("app", "svc"), 2, "after the flood")
	kept := len(got) - 2
	if kept < 10 || kept > 100 {
		t.Errorf("got %d lines of the flood written, want about the burst's worth (2000 bytes: 55)", kept)
	}
	want := fmt.Sprintf("paddock: %d lines dropped", 20000-kept)
	if !strings.Contains(got[len(got)-2], want) {
		t.Errorf("got %q before the next line, want it to say %q", got[len(got)-2], want)
	}
}

// waitDrained waits until the service's pipe is empty.
func waitDrained(t *testing.T, key string) {
	t.Helper()
	f, err := os.OpenFile(fifoPath(key), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(20 * time.Millisecond) {
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
		if err == nil && n == 0 {
			time.Sleep(50 * time.Millisecond) // the last line read is being accounted
			return
		}
	}
	t.Fatal("the agent did not drain the pipe")
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 250 * time.Millisecond, Max: 2 * time.Second}
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	for n, w := range want {
		if got := b.next(n); got != w {
			t.Errorf("next(%d): got %v, want %v", n, got, w)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy string
		code   int
		want   bool
	}{
		{"on-failure", 0, false}, {"on-failure", 1, true}, {"on-failure", 137, true}, {"on-failure", -1, true},
		{"always", 0, true}, {"always", 2, true}, {"never", 0, false}, {"never", 9, false},
	} {
		if got := restartPolicy(tc.policy, tc.code); got != tc.want {
			t.Errorf("restart %s after status %d: got %v, want %v", tc.policy, tc.code, got, tc.want)
		}
	}
}
