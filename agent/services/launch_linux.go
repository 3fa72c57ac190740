package services

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/notify"
	"paddock.dev/paddock/internal/procstat"
)

// runDir holds the records of the running services, their status files
// and log pipes.
func runDir() string { return filepath.Join(dirs.RunDir, "paddock", "services") }

func recordPath(key string) string { return filepath.Join(runDir(), key+".json") }
func statusPath(key string) string { return filepath.Join(runDir(), key+".status") }
func fifoPath(key string) string   { return filepath.Join(runDir(), key+".log") }

// record is what the agent keeps of a running service, to re-adopt it.
type record struct {
	App      string    `json:"app"`
	Service  string    `json:"service"`
	Revision int       `json:"revision"`
	PID      int       `json:"pid"`
	Start    string    `json:"start"`
	Started  time.Time `json:"started"`
	Restarts int       `json:"restarts"`
	Quick    int       `json:"quick"`
	Ready    bool      `json:"ready"`
	// Since is when the service entered its state; LastExit how its
	// previous run ended.
	Since    time.Time             `json:"since"`
	LastExit *apitypes.ServiceExit `json:"last-exit,omitempty"`
}

// launch starts the launcher of a run of s: 'paddock run APP.SVC' in a
// session of its own, its output on the service's log pipe, and returns
// the run and, for a notify service, the read end of its notify pipe.
func (m *Manager) launch(s *service) (*run, *os.File, error) {
	key := s.key()
	out, err := openPipe(fifoPath(key), true)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot start %s: %w", key, err)
	}
	defer out.Close()
	os.Remove(statusPath(key))
	cmd := exec.Command(m.Exe, "run", key)
	cmd.Args[0] = "paddock"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(launcherEnv(), launch.StatusEnv+"="+statusPath(key))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var notifyR, notifyW *os.File
	if s.def.Daemon == "notify" {
		if notifyR, notifyW, err = os.Pipe(); err != nil {
			return nil, nil, err
		}
		defer notifyW.Close()
		cmd.ExtraFiles = []*os.File{notifyW}
		cmd.Env = append(cmd.Env, notify.EnvFD+"=3")
	}
	if err := cmd.Start(); err != nil {
		if notifyR != nil {
			notifyR.Close()
		}
		return nil, nil, fmt.Errorf("cannot start %s: %w", key, err)
	}
	r := &run{pid: cmd.Process.Pid, start: procstat.StartTime(cmd.Process.Pid), started: timeNow(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = exitCode(ee.Sys().(syscall.WaitStatus))
		} else if err != nil {
			code = -1
		}
		s.ended(r, code)
	}()
	return r, notifyR, nil
}

// launcherEnv is the launcher's environment: the agent's, less what init
// gave the agent alone.
func launcherEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != notify.EnvFD && k != launch.StatusEnv {
			env = append(env, kv)
		}
	}
	return env
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// openPipe opens the FIFO at path, making it when missing (root only),
// for reading and writing, so that neither end ever lacks the other: the
// launcher's writes never fail while the agent is away. With block, the
// descriptor blocks (for the launcher); otherwise the agent reads it
// through Go's poller.
func openPipe(path string, block bool) (*os.File, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, os.NewSyscallError("mkfifo", err)
	}
	flags := unix.O_RDWR | unix.O_CLOEXEC
	if !block {
		flags |= unix.O_NONBLOCK
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open the log pipe %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot open the log pipe %s: not a pipe", path)
	}
	// Room for bursts while the agent is busy or away.
	unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20)
	return os.NewFile(uintptr(fd), path), nil
}

// writeRecordLocked records the run of s, so that the next agent can
// re-adopt it.
func (m *Manager) writeRecordLocked(s *service) {
	if s.run == nil {
		return
	}
	rec := record{App: s.app, Service: s.name, Revision: s.rev, PID: s.run.pid, Start: s.run.start,
		Started: s.run.started, Restarts: s.restarts, Quick: s.quick, Ready: s.ready, Since: s.since, LastExit: s.lastExit}
	data, _ := json.Marshal(rec)
	if err := atomicfile.WriteFile(recordPath(s.key()), data, 0o600); err != nil {
		m.log.Warn("cannot record a service: a restarted agent will not re-adopt it", "service", s.key(), "err", err)
	}
}

func (m *Manager) removeRecord(s *service) {
	os.Remove(recordPath(s.key()))
	os.Remove(statusPath(s.key()))
}

// readopt takes over the runs recorded by an earlier agent: those whose
// launcher still runs are watched through a pidfd; those that ended while
// no agent watched are accounted for as ended (and restarted as their
// policy says) once their service is known.
func (m *Manager) readopt() {
	paths, _ := filepath.Glob(filepath.Join(runDir(), "*.json"))
	for _, p := range paths {
		var rec record
		data, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(data, &rec) != nil || rec.PID <= 0 || filepath.Base(p) != rec.App+"."+rec.Service+".json" {
			os.Remove(p)
			continue
		}
		if err := m.adopt(rec); err != nil {
			m.log.Warn("cannot re-adopt a service", "service", rec.App+"."+rec.Service, "err", err)
		}
	}
}

// adopt makes the service of rec and watches its run.
func (m *Manager) adopt(rec record) error {
	def, err := loadDef(rec.App, rec.Service, rec.Revision)
	if err != nil {
		return err
	}
	key := rec.App + "." + rec.Service
	m.mu.Lock()
	defer m.mu.Unlock()
	s := newService(m, rec.App, rec.Service, rec.Revision, def)
	s.enabled = !m.disabled()[key]
	s.restarts, s.quick, s.ready = rec.Restarts, rec.Quick, rec.Ready || def.Daemon != "notify"
	r := &run{pid: rec.PID, start: rec.Start, started: rec.Started, done: make(chan struct{})}
	s.run = r
	s.setStateLocked(apitypes.ServiceRunning)
	if !s.ready {
		s.setStateLocked(apitypes.ServiceStarting)
	}
	s.lastExit = rec.LastExit
	if !rec.Since.IsZero() {
		s.since = rec.Since
	}
	m.svcs[key] = s
	l, err := openServiceLog(rec.App, rec.Service, m.LogLimits)
	if err == nil {
		s.log = l
	}
	pidfd := -1
	if procstat.StartTime(rec.PID) == rec.Start {
		pidfd, err = unix.PidfdOpen(rec.PID, 0)
		if err != nil {
			pidfd = -1
		}
	}
	go func() {
		if pidfd >= 0 {
			waitPidfd(pidfd)
			unix.Close(pidfd)
		}
		// Its launcher wrote the status before it ended (unless SIGKILL ended it).
		s.ended(r, readStatus(statusPath(key)))
	}()
	m.log.Info("re-adopted service", "service", key, "pid", rec.PID, "running", pidfd >= 0)
	return nil
}

// waitPidfd blocks until the process of pidfd has ended.
func waitPidfd(fd int) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, -1)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		return
	}
}

// readStatus reads the exit status a launcher wrote, or -1.
func readStatus(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return -1
	}
	return code
}

// mainPIDLocked returns the process of run r, the launcher's child, or 0
// before the launcher forked it or after it ended. It keeps what it found:
// the loop asks for it every few seconds (the health manager's crash
// loops), and checking that the process kept is still the launcher's
// child reads one file where looking for it reads one per thread.
func (r *run) mainPIDLocked() int {
	if r.main != 0 && procstat.Parent(r.main) == r.pid {
		return r.main
	}
	r.main = mainPID(r.pid)
	return r.main
}

// mainPID returns the launcher's first child, or 0 when it has none.
func mainPID(launcher int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", launcher))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				return pid
			}
		}
	}
	return 0
}
