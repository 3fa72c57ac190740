package boot

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"paddock.dev/paddock/internal/notify"
)

// A starter starts a command and reports its exit code once on the
// returned channel (128+N for a command killed by signal N). On a device it
// is the PID 1 reaper, which collects every orphan too.
type starter interface {
	start(cmd *exec.Cmd) (<-chan int, error)
}

// An action is what init does after the agent has stopped.
type action int

const (
	powerOff action = iota
	reboot
)

// supervisor runs the agent in stage 2, and the paddock.cmd command once
// the agent is ready.
type supervisor struct {
	con         *console
	starter     starter
	agentArgv   []string
	agentOut    *os.File // the console
	env         []string
	cmd         string                          // paddock.cmd, or ""
	ready       func(ctx context.Context) error // returns once the agent is ready
	afterReady  func()                          // run once the agent is ready, if set
	readyOnce   sync.Once
	agentReady  chan struct{} // closed when an agent said it was ready
	backoffMin  time.Duration // the first restart delay, doubled on each crash
	backoffMax  time.Duration
	stopTimeout time.Duration // between SIGTERM and SIGKILL
	drainWait   time.Duration // for output of the command's background children
}

func newSupervisor(con *console, st starter, cmd string) *supervisor {
	s := &supervisor{
		con:         con,
		starter:     st,
		agentArgv:   []string{selfExe, "daemon"},
		agentOut:    os.Stdout,
		env:         childEnv(os.Environ()),
		cmd:         cmd,
		agentReady:  make(chan struct{}),
		backoffMin:  time.Second,
		backoffMax:  30 * time.Second,
		stopTimeout: 10 * time.Second,
		drainWait:   2 * time.Second,
	}
	s.ready = s.waitAgentReady
	return s
}

// waitAgentReady returns once an agent has said it is ready, or with ctx's
// error.
func (s *supervisor) waitAgentReady(ctx context.Context) error {
	select {
	case <-s.agentReady:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startAgent starts the agent with the write end of a pipe, named by
// $PADDOCK_NOTIFY_FD, on which it says when it serves (package notify).
func (s *supervisor) startAgent() (*exec.Cmd, <-chan int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := s.command(s.agentArgv, s.agentOut)
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], notify.EnvFD+"=3")
	exited, err := s.starter.start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	go func() {
		defer r.Close()
		if notify.WaitReady(r) {
			s.readyOnce.Do(func() { close(s.agentReady) })
		}
	}()
	return cmd, exited, nil
}

// run supervises the agent until a stop signal arrives or the command has
// ended, stops the agent and returns what to do next.
func (s *supervisor) run(signals <-chan os.Signal) action {
	ctx, cancel := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { s.superviseAgent(ctx); close(agentDone) }()
	cmdDone, jobDone := make(chan struct{}), make(chan struct{})
	go func() { s.announce(ctx, cmdDone); close(jobDone) }()
	act, stop := powerOff, false
	for !stop {
		select {
		case sig := <-signals:
			act, stop = s.onSignal(sig)
		case <-cmdDone:
			stop = true
		}
	}
	cancel()
	<-jobDone
	<-agentDone
	return act
}

// onSignal maps a signal to an action: SIGINT (ctrl-alt-del) reboots,
// SIGTERM and SIGUSR2 power off; other signals are ignored.
func (s *supervisor) onSignal(sig os.Signal) (act action, stop bool) {
	switch sig {
	case syscall.SIGINT:
		return reboot, true
	case syscall.SIGTERM, sigUSR2:
		return powerOff, true
	}
	s.con.logf("ignoring signal %v", sig)
	return powerOff, false
}

// announce waits for the agent to answer, says so, then runs the command
// if there is one and closes cmdDone after it.
func (s *supervisor) announce(ctx context.Context, cmdDone chan<- struct{}) {
	if err := s.ready(ctx); err != nil {
		return // stopping
	}
	s.con.line(msgReady)
	s.con.tracef("agent ready")
	if s.afterReady != nil {
		s.afterReady()
	}
	if s.cmd == "" {
		return
	}
	s.runCmd(ctx)
	close(cmdDone)
}

// superviseAgent keeps the agent running, restarting it with a doubling
// delay after each exit, until ctx ends; then it stops the agent.
func (s *supervisor) superviseAgent(ctx context.Context) {
	delay := s.backoffMin
	for {
		started := time.Now()
		if cmd, exited, err := s.startAgent(); err != nil {
			s.con.logf("cannot start the agent: %v", err)
		} else {
			s.con.tracef("agent started")
			select {
			case code := <-exited:
				s.con.logf("agent exited with code %d", code)
			case <-ctx.Done():
				s.stop(cmd.Process, exited, "agent")
				return
			}
		}
		if time.Since(started) > s.backoffMax {
			delay = s.backoffMin // it had been up a while: not a crash loop
		}
		s.con.logf("restarting the agent in %v", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, s.backoffMax)
	}
}

// runCmd runs the paddock.cmd command with /bin/sh between the begin and
// end lines of the console protocol. Its output goes through a pipe so that
// the end line starts a line of its own.
func (s *supervisor) runCmd(ctx context.Context) {
	s.con.line(msgCmdBegin)
	code, err := s.shell(ctx)
	if err != nil {
		s.con.logf("cannot run paddock.cmd: %v", err)
		code = 127
	}
	s.con.line(msgCmdEnd + strconv.Itoa(code))
}

func (s *supervisor) shell(ctx context.Context) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := s.command([]string{shellBinary, "-c", s.cmd}, w)
	exited, err := s.starter.start(cmd)
	w.Close()
	if err != nil {
		return 0, err
	}
	drained := make(chan struct{})
	go func() { io.Copy(s.con, r); close(drained) }()
	var code int
	select {
	case code = <-exited:
	case <-ctx.Done():
		code = s.stop(cmd.Process, exited, "paddock.cmd")
	}
	select {
	case <-drained:
	case <-time.After(s.drainWait): // a background child still holds the pipe
	}
	return code, nil
}

// command makes a command with init's environment and out as its stdout
// and stderr. A command of selfExe is called paddock in its argv[0].
func (s *supervisor) command(argv []string, out *os.File) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	if argv[0] == selfExe {
		cmd.Args[0] = "paddock"
	}
	cmd.Env = s.env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

// stop sends SIGTERM to p, then SIGKILL after stopTimeout, and returns its
// exit code.
func (s *supervisor) stop(p *os.Process, exited <-chan int, what string) int {
	p.Signal(syscall.SIGTERM)
	select {
	case code := <-exited:
		return code
	case <-time.After(s.stopTimeout):
	}
	s.con.logf("%s did not stop within %v: killing it", what, s.stopTimeout)
	p.Kill()
	select {
	case code := <-exited:
		return code
	case <-time.After(s.stopTimeout):
		s.con.logf("%s did not die", what)
		return -1
	}
}

// childEnv is init's environment for the agent and the command: without
// PADDOCK_ROOT (the agent runs on the real root) and with a PATH.
func childEnv(environ []string) []string {
	var env []string
	hasPath := false
	for _, kv := range environ {
		switch {
		case strings.HasPrefix(kv, "PADDOCK_ROOT="):
			continue
		case strings.HasPrefix(kv, "PATH="):
			hasPath = true
		}
		env = append(env, kv)
	}
	if !hasPath {
		env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return env
}
