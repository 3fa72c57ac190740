package services

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/notify"
	"paddock.dev/paddock/internal/procstat"
	"paddock.dev/paddock/ota/manifest"
)

// service is one supervised service; its fields are guarded by m.mu.
type service struct {
	m         *Manager
	app, name string
	rev       int
	def       manifest.App

	enabled bool
	// pending is set while the service is to start once what it is after
	// has started.
	pending bool
	state   string
	since   time.Time
	message string
	// run is the current run, or nil.
	run *run
	// ready is set once a notify service said READY=1 (at once for others).
	ready bool
	// stopping is set while a stop waits for the run to end.
	stopping bool
	// held is set when the service ended while a change worked on its
	// app (which may have stopped it): it starts again once the change is
	// over, unless the change made another revision current.
	held bool
	// restarts counts restarts since the service was last started on
	// purpose; quick counts the failures in a row that came soon after a
	// start (for the backoff and the crash loop).
	restarts, quick int
	lastExit        *apitypes.ServiceExit
	next            time.Time
	timer           *time.Timer
	log             *serviceLog
}

// run is one launcher process of a service.
type run struct {
	pid     int
	start   string // its start time, /proc/PID/stat field 22
	started time.Time
	// done is closed once the run ended and was accounted for.
	done chan struct{}
	// main is the service's process as last found (mainPIDLocked), guarded
	// by m.mu.
	main int
}

func newService(m *Manager, app, name string, rev int, def *manifest.App) *service {
	return &service{m: m, app: app, name: name, rev: rev, def: *def, state: apitypes.ServiceStopped, since: timeNow()}
}

func (s *service) key() string { return s.app + "." + s.name }

func (s *service) setStateLocked(st string) {
	if s.state != st {
		s.state, s.since = st, timeNow()
	}
}

// activeLocked reports whether the service runs or is about to.
func (s *service) activeLocked() bool {
	return s.run != nil || s.timer != nil || s.pending
}

// startedLocked reports whether the services after s may start: s runs
// and is ready, or is a oneshot that ended well.
func (s *service) startedLocked() bool {
	if s.def.Daemon == "oneshot" {
		return s.state == apitypes.ServiceExited
	}
	return s.run != nil && s.ready
}

// launchLocked starts a run of the service.
func (s *service) launchLocked() error {
	if s.run != nil {
		return nil
	}
	s.cancelTimerLocked()
	if s.log == nil {
		l, err := openServiceLog(s.app, s.name, s.m.LogLimits)
		if err != nil {
			s.failLocked(err)
			return err
		}
		s.log = l
	}
	r, notify, err := s.m.launch(s)
	if err != nil {
		s.failLocked(err)
		return err
	}
	s.run, s.message, s.stopping, s.held = r, "", false, false
	s.ready = s.def.Daemon != "notify"
	if s.ready {
		s.setStateLocked(apitypes.ServiceRunning)
	} else {
		s.setStateLocked(apitypes.ServiceStarting)
		go s.waitReady(r, notify)
	}
	s.since = r.started
	s.m.writeRecordLocked(s)
	return nil
}

// failLocked records that the service could not be launched.
func (s *service) failLocked(err error) {
	s.setStateLocked(apitypes.ServiceFailed)
	s.message = err.Error()
	s.m.log.Error("service", "service", s.key(), "err", err)
}

// waitReady waits for a notify service to say it is ready.
func (s *service) waitReady(r *run, f *os.File) {
	ok := notify.WaitReady(f)
	f.Close()
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.run != r || !ok {
		return
	}
	s.ready = true
	s.setStateLocked(apitypes.ServiceRunning)
	m.writeRecordLocked(s)
	m.startPendingLocked(s.app)
}

// ended accounts for the end of run r with exit code (-1: unknown), and
// restarts the service as its policy says.
func (s *service) ended(r *run, code int) {
	m := s.m
	// A service of a revision that a change in progress is taking away (a
	// remove, a revert, a refresh's switch) is not restarted.
	cur, _ := currentRevision(s.app)
	busy := cur != s.rev && m.busy(s.app)
	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(r.done)
	if s.run != r {
		return
	}
	now := timeNow()
	s.run = nil
	s.lastExit = &apitypes.ServiceExit{Code: code, Time: now}
	// The run's record goes, unless a new run replaced it: an immediate
	// restart launches first (removing a file can wait on the disk, for a
	// discard), and the new run's record takes the old one's place.
	defer func() {
		if s.run == nil {
			m.removeRecord(s)
		}
	}()
	if s.stopping || !s.enabled {
		s.stopping = false
		s.setStateLocked(apitypes.ServiceStopped)
		return
	}
	if busy {
		s.held = true
		s.setStateLocked(apitypes.ServiceStopped)
		s.message = fmt.Sprintf("ended with status %d while a change of %s was in progress", code, s.app)
		return
	}
	if now.Sub(r.started) >= m.Backoff.Stable {
		s.quick = 0
	}
	if !restartPolicy(s.def.Restart, code) {
		if code == 0 {
			s.setStateLocked(apitypes.ServiceExited)
			m.startPendingLocked(s.app)
		} else {
			s.setStateLocked(apitypes.ServiceFailed)
			s.message = fmt.Sprintf("ended with status %d (restart: %s)", code, s.def.Restart)
		}
		return
	}
	delay := m.Backoff.next(s.quick)
	if code != 0 {
		s.quick++
		s.message = fmt.Sprintf("ended with status %d", code)
	}
	s.restarts++
	m.log.Info("service ended", "service", s.key(), "status", code, "restart-in", delay)
	if delay == 0 {
		s.launchLocked()
		return
	}
	s.next = now.Add(delay)
	s.setStateLocked(apitypes.ServiceWaiting)
	s.timer = time.AfterFunc(delay, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if s.timer == nil {
			return
		}
		s.timer = nil
		if m.svcs[s.key()] == s {
			s.launchLocked()
		}
	})
}

func (s *service) cancelTimerLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.next = time.Time{}
}

// stop stops the service and waits until its run ended: SIGTERM to the
// launcher's process group and to the processes of the command's cgroup
// (kill_linux.go), SIGKILL to both after the stop-timeout.
func (s *service) stop() error {
	m := s.m
	m.mu.Lock()
	s.pending = false
	s.cancelTimerLocked()
	r := s.run
	if r == nil {
		if s.state == apitypes.ServiceWaiting || s.state == apitypes.ServiceRunning || s.state == apitypes.ServiceStarting {
			s.setStateLocked(apitypes.ServiceStopped)
		}
		m.mu.Unlock()
		return nil
	}
	s.stopping = true
	s.setStateLocked(apitypes.ServiceStopping)
	timeout := s.def.StopTimeout
	if timeout <= 0 {
		timeout = manifest.DefaultStopTimeout
	}
	m.mu.Unlock()
	deadline := time.Now().Add(timeout)
	if err := signalGroup(r, syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := signalCommand(s, syscall.SIGTERM); err != nil {
		m.log.Warn("cannot signal the service's cgroup", "service", s.key(), "err", err)
	}
	select {
	case <-r.done:
	case <-time.After(time.Until(deadline)):
		m.log.Warn("service did not stop in time: killing it", "service", s.key(), "stop-timeout", timeout)
		if err := signalGroup(r, syscall.SIGKILL); err != nil {
			return err
		}
	}
	// What left the group ends through the cgroup.
	if err := endCommand(s, deadline); err != nil {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cannot stop %s: its launcher %d did not end after SIGKILL", s.key(), r.pid)
	}
}

// signalGroup sends sig to the process group of run r, the launcher's,
// unless the launcher is gone (its PID may name another process since).
func signalGroup(r *run, sig syscall.Signal) error {
	if procstat.StartTime(r.pid) != r.start {
		return nil
	}
	err := syscall.Kill(-r.pid, sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cannot signal the service's processes: %w", os.NewSyscallError("kill", err))
	}
	return nil
}

// infoLocked is what the API reports of the service.
func (s *service) infoLocked() apitypes.ServiceInfo {
	in := apitypes.ServiceInfo{
		App: s.app, Service: s.name, Revision: s.rev, Daemon: s.def.Daemon, Restart: s.def.Restart,
		State: s.state, Enabled: s.enabled, Since: s.since, Restarts: s.restarts,
		LastExit: s.lastExit, CrashLoop: s.quick >= s.m.Backoff.CrashLoop, NextRestart: s.next,
		Message: s.message,
	}
	if s.pending && s.run == nil {
		in.State = apitypes.ServiceStarting
	}
	if s.run != nil {
		in.PID = s.run.mainPIDLocked()
	}
	return in
}

func (s *service) closeLog() {
	if s.log != nil {
		s.log.close()
	}
}
