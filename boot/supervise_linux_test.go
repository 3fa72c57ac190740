package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitStarter starts commands and waits for each, as a process that is not
// PID 1 may.
type waitStarter struct{}

var _ starter = waitStarter{}

func (waitStarter) start(cmd *exec.Cmd) (<-chan int, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	go func() {
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			ch <- cmdExitAbove + int(ws.Signal())
			return
		}
		ch <- ws.ExitStatus()
	}()
	return ch, nil
}

// testSupervisor supervises agent (a shell script) with short delays.
func testSupervisor(t *testing.T, agent, cmd string, ready func(context.Context) error) (*supervisor, *syncBuffer) {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	var buf syncBuffer
	s := newSupervisor(newConsole(&buf), waitStarter{}, cmd)
	s.agentArgv = []string{"/bin/sh", "-c", agent}
	s.agentOut = devnull
	s.env = []string{"PATH=/usr/bin:/bin"}
	if ready != nil { // nil: the real one, the agent's notify pipe
		s.ready = ready
	}
	s.backoffMin, s.backoffMax = 10*time.Millisecond, 40*time.Millisecond
	s.stopTimeout, s.drainWait = 200*time.Millisecond, 200*time.Millisecond
	return s, &buf
}

func readyNow(context.Context) error { return nil }

func neverReady(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// protocol returns the protocol lines and command output, without log lines.
func protocol(out string) string {
	var keep []string
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, logPrefix) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "")
}

func TestSupervisorCmd(t *testing.T) {
	dir := t.TempDir()
	started, stopped := filepath.Join(dir, "started"), filepath.Join(dir, "stopped")
	agent := "trap 'echo > " + stopped + "; exit 0' TERM; echo > " + started + "; while :; do sleep 0.05; done"
	ready := func(ctx context.Context) error {
		for {
			if _, err := os.Stat(started); err == nil {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	s, buf := testSupervisor(t, agent, "echo out; echo err >&2; printf tail; exit 3", ready)
	if act := s.run(nil); act != powerOff {
		t.Errorf("got action %v, want power off", act)
	}
	want := "paddock: agent ready\npaddock: cmd begin\nout\nerr\ntail\npaddock: cmd end 3\n"
	if got := protocol(buf.String()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := os.Stat(stopped); err != nil {
		t.Errorf("the agent was not stopped with SIGTERM: %v", err)
	}
}

// TestSupervisorNoCmd also pins a bug: a stop signal was taken for "keep
// waiting", so init never shut down.
func TestSupervisorNoCmd(t *testing.T) {
	s, buf := testSupervisor(t, "exec sleep 60", "", readyNow)
	signals := make(chan os.Signal, 1)
	go func() {
		waitFor(t, buf, msgReady)
		signals <- syscall.SIGINT
	}()
	if act := s.run(signals); act != reboot {
		t.Errorf("SIGINT: got action %v, want reboot", act)
	}
	if got := protocol(buf.String()); got != msgReady+"\n" {
		t.Errorf("got %q, want only the ready line", got)
	}
}

func TestSupervisorSignals(t *testing.T) {
	for _, tt := range []struct {
		sigs []os.Signal
		want action
	}{
		{[]os.Signal{syscall.SIGTERM}, powerOff},
		{[]os.Signal{syscall.SIGHUP, syscall.SIGUSR2}, powerOff},
		{[]os.Signal{syscall.SIGQUIT, syscall.SIGINT}, reboot},
	} {
		s, buf := testSupervisor(t, "exec sleep 60", "", neverReady)
		signals := make(chan os.Signal, len(tt.sigs))
		for _, sig := range tt.sigs {
			signals <- sig
		}
		if act := s.run(signals); act != tt.want {
			t.Errorf("%v: got %v, want %v", tt.sigs, act, tt.want)
		}
		if len(tt.sigs) > 1 && !strings.Contains(buf.String(), "ignoring signal") {
			t.Errorf("%v: the first signal was not ignored: %q", tt.sigs, buf.String())
		}
	}
}

func TestSupervisorRestartsAgent(t *testing.T) {
	s, buf := testSupervisor(t, "exit 1", "", neverReady)
	signals := make(chan os.Signal, 1)
	go func() {
		waitFor(t, buf, "restarting the agent in 40ms\n"+logPrefix+"agent exited with code 1\n"+logPrefix+"restarting the agent in 40ms")
		signals <- syscall.SIGTERM
	}()
	s.run(signals)
	out := buf.String()
	for _, want := range []string{"in 10ms", "in 20ms", "in 40ms"} {
		if !strings.Contains(out, "restarting the agent "+want) {
			t.Errorf("no restart %s in %q", want, out)
		}
	}
	if strings.Contains(out, "in 80ms") {
		t.Errorf("backoff not capped at 40ms: %q", out)
	}
}

func TestSupervisorKillsStubbornAgent(t *testing.T) {
	// Regression: the signal was once queued before the agent had even
	// started (or set its trap), so nothing was left to kill.
	marker := filepath.Join(t.TempDir(), "trapped")
	s, buf := testSupervisor(t, "trap '' TERM; : > "+marker+"; exec sleep 60", "", neverReady)
	signals := make(chan os.Signal, 1)
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
		}
		signals <- syscall.SIGTERM
	}()
	start := time.Now()
	s.run(signals)
	if !strings.Contains(buf.String(), "agent did not stop within 200ms: killing it") {
		t.Errorf("got %q, want the agent killed", buf.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

func TestSupervisorCmdInterrupted(t *testing.T) {
	s, buf := testSupervisor(t, "exec sleep 60", "exec sleep 60", readyNow)
	signals := make(chan os.Signal, 1)
	go func() {
		waitFor(t, buf, msgCmdBegin)
		time.Sleep(50 * time.Millisecond)
		signals <- syscall.SIGTERM
	}()
	s.run(signals)
	want := "paddock: agent ready\npaddock: cmd begin\npaddock: cmd end 143\n"
	if got := protocol(buf.String()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestSupervisorCmdBackgroundChild pins that a command leaving a child
// behind that holds its output open still ends.
func TestSupervisorCmdBackgroundChild(t *testing.T) {
	s, buf := testSupervisor(t, "exec sleep 60", "sleep 3 & echo started", readyNow)
	start := time.Now()
	s.run(nil)
	if got, want := protocol(buf.String()), "paddock: agent ready\npaddock: cmd begin\nstarted\npaddock: cmd end 0\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want the drain wait only", d)
	}
}

func TestSupervisorCmdNotStarted(t *testing.T) {
	s, buf := testSupervisor(t, "exec sleep 60", "true", readyNow)
	s.starter = failingShell{s.starter}
	s.run(nil)
	if got := protocol(buf.String()); !strings.HasSuffix(got, "paddock: cmd end 127\n") {
		t.Errorf("got %q, want cmd end 127", got)
	}
}

// failingShell fails to start the shell of paddock.cmd.
type failingShell struct{ starter }

func (f failingShell) start(cmd *exec.Cmd) (<-chan int, error) {
	if len(cmd.Args) > 1 && cmd.Args[1] == "-c" && cmd.Args[2] == "true" {
		return nil, os.ErrNotExist
	}
	return f.starter.start(cmd)
}

// TestSupervisorAgentNotifies checks readiness through the notify pipe:
// an agent that exits without saying it is ready is not announced; the
// next one, which writes the ready line to $PADDOCK_NOTIFY_FD, is, once.
func TestSupervisorAgentNotifies(t *testing.T) {
	tries := filepath.Join(t.TempDir(), "tries")
	agent := `echo >> ` + tries + `; [ $(wc -l < ` + tries + `) -ge 2 ] || exit 7; echo READY=1 >&$PADDOCK_NOTIFY_FD; exec sleep 60`
	s, buf := testSupervisor(t, agent, "", nil)
	afterReady := make(chan struct{})
	s.afterReady = func() { close(afterReady) }
	signals := make(chan os.Signal, 1)
	done := make(chan action)
	go func() { done <- s.run(signals) }()
	waitFor(t, buf, msgReady)
	select {
	case <-afterReady:
	case <-time.After(5 * time.Second):
		t.Error("the after-ready work did not run")
	}
	signals <- syscall.SIGTERM
	<-done
	out := buf.String()
	if i, j := strings.Index(out, "agent exited with code 7"), strings.Index(out, msgReady); i < 0 || j < i {
		t.Errorf("want the first agent's exit before the ready line:\n%s", out)
	}
	if n := strings.Count(out, msgReady); n != 1 {
		t.Errorf("ready announced %d times, want once:\n%s", n, out)
	}
}

// TestSupervisorAgentSilent checks that an agent that runs but never says
// it is ready is not announced.
func TestSupervisorAgentSilent(t *testing.T) {
	s, buf := testSupervisor(t, "exec sleep 60", "", nil)
	signals := make(chan os.Signal, 1)
	done := make(chan action)
	go func() { done <- s.run(signals) }()
	time.Sleep(300 * time.Millisecond)
	signals <- syscall.SIGTERM
	<-done
	if strings.Contains(buf.String(), msgReady) {
		t.Errorf("a silent agent was announced ready:\n%s", buf.String())
	}
}

// waitFor waits until the console shows s.
func waitFor(t *testing.T, buf *syncBuffer, s string) {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), s) {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %q in %q", s, buf.String())
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
