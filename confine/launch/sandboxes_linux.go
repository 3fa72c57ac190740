package launch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/procstat"
)

// A sandbox is kept per command and revision, like snapd keeps mount
// namespaces: its init holds the namespaces and the mounts, so that a
// launch only joins them (setns) instead of building them again. Its record
// lives on the run directory (a tmpfs on a device), so a boot starts fresh.

// sandboxRecord is what is known of a kept sandbox.
type sandboxRecord struct {
	PID int `json:"pid"`
	// Start is the init's start time in clock ticks, so that a recycled
	// PID is not mistaken for it.
	Start string `json:"start"`
	// Key is a digest of what the sandbox was built from (sandboxKey).
	Key string `json:"key"`
}

func nsDir() string { return filepath.Join(dirs.RunDir, "paddock", "ns") }

func recordPath(label string, rev int) string {
	return filepath.Join(nsDir(), fmt.Sprintf("%s.%d.json", label, rev))
}

// sandboxKey digests what the sandbox's init builds it from: the app, the
// host directories of the root directory, and the policy's mounts and
// network (so that a policy that changes them never reuses a sandbox built
// for the old ones). What every launch applies itself (the user, seccomp,
// AppArmor, the device cgroup, the environment) is left out: a connection
// that changes only those keeps the sandbox a running app is in (see
// ApplyPolicy). So is the host's resolv.conf (mountResolv): a sandbox kept
// from before it was shown (by an older agent) is joined as it is, and
// shows it once it is made again (when idle, or at the next boot).
func sandboxKey(s *Spec) string {
	b, _ := json.Marshal([]any{s.App, s.Network, s.Mounts, s.Scratch, s.HostAppDir, s.AppDir, s.HostDataDir, s.DataDir, s.HostCommonDir, s.CommonDir, s.HostCtlDir})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// lockRecord takes the lock of the kept sandbox of label's revision rev,
// exclusively: launches take it to build or join the sandbox, ApplyPolicy
// to change it.
func lockRecord(label string, rev int) (*os.File, error) {
	if err := os.MkdirAll(nsDir(), 0o700); err != nil {
		return nil, err
	}
	return lockFile(recordPath(label, rev) + ".lock")
}

// ensureSandbox returns the record of the sandbox for spec, starting one
// when there is none (or the one there was built for other mounts, in
// which case it is stopped). The caller holds lock, the record's lock,
// exclusively; it is held shared on return: an idle sandbox's init ends
// only under the exclusive lock (see retire), so the sandbox stays until
// the caller has forked the app into it and closed the lock.
func ensureSandbox(s *Spec, lock *os.File) (sandboxRecord, error) {
	for {
		rec, err := ensureLocked(s)
		if err == nil {
			err = flock(lock, unix.LOCK_SH)
		}
		if err != nil {
			return sandboxRecord{}, err
		}
		if procstat.StartTime(rec.PID) == rec.Start {
			return rec, nil
		}
		// The init retired while the lock changed hands: build again.
		if err := flock(lock, unix.LOCK_EX); err != nil {
			return sandboxRecord{}, err
		}
	}
}

// checkPolicy fails when the policy file no longer holds the policy s was
// resolved from: a connection changed it, and ApplyPolicy has set the
// command's cgroup (and its kept sandbox) for the new one, which this
// launch would undo. The caller holds the record's lock, which
// ApplyPolicy takes too.
func checkPolicy(s *Spec) error {
	if s.PolicyPath == "" {
		return nil
	}
	now, err := os.ReadFile(s.PolicyPath)
	if err != nil || !bytes.Equal(now, s.Policy) {
		return fmt.Errorf("cannot run %s: its policy changed while it started (a connection changed): run it again", s.Label)
	}
	return nil
}

// ensureLocked is ensureSandbox under the exclusive lock.
func ensureLocked(s *Spec) (sandboxRecord, error) {
	key := sandboxKey(s)
	if rec, ok := readRecord(recordPath(s.Label, s.Revision)); ok {
		if rec.Key == key {
			return rec, nil
		}
		stopInit(rec)
	}
	pid, err := startSandbox(s)
	if err != nil {
		return sandboxRecord{}, err
	}
	rec := sandboxRecord{PID: pid, Start: procstat.StartTime(pid), Key: key}
	data, _ := json.Marshal(rec)
	if err := atomicfile.WriteFile(recordPath(s.Label, s.Revision), data, 0o600); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return sandboxRecord{}, err
	}
	return rec, nil
}

// launchMagic starts a launch file; fastpath.c checks it. It changes with
// the format, so that the fast path never reads a file of another one.
const launchMagic = "paddock-launch-3"

func launchPath(label string, rev int) string {
	return filepath.Join(nsDir(), fmt.Sprintf("%s.%d.launch", label, rev))
}

// writeLaunchFile records what the fast path of 'paddock run' (fastpath.c)
// needs to start the command again in the sandbox rec, without the Go
// launcher: NUL-terminated fields, in order: the magic, the init's PID and
// start time, the AppArmor label ("" for none), the seccomp program's
// path, the data directory, the app's user and group ids, the policy
// file's path and the bytes the sandbox was built from (the fast path
// joins the sandbox only while the file still holds them), then three
// lists (a count, then the items): the cgroup.procs files, the command's
// words and the environment.
func writeLaunchFile(s *Spec, rec sandboxRecord, procs []string, seccompPath string) error {
	if bytes.IndexByte(s.Policy, 0) >= 0 || len(s.Policy) == 0 {
		// Not a policy the fast path could compare: launches take the Go path.
		os.Remove(launchPath(s.Label, s.Revision))
		return nil
	}
	var b bytes.Buffer
	field := func(v string) { b.WriteString(v); b.WriteByte(0) }
	list := func(vs []string) {
		field(strconv.Itoa(len(vs)))
		for _, v := range vs {
			field(v)
		}
	}
	label := ""
	if s.AppArmor {
		label = s.Label
	}
	for _, v := range []string{launchMagic, strconv.Itoa(rec.PID), rec.Start, label, seccompPath, s.DataDir, strconv.Itoa(s.UID), strconv.Itoa(s.GID), s.PolicyPath, string(s.Policy)} {
		field(v)
	}
	list(procs)
	list(s.Argv[:s.BaseArgc])
	list(s.Env)
	return atomicfile.WriteFile(launchPath(s.Label, s.Revision), b.Bytes(), 0o600)
}

// startSandbox starts the init of a new sandbox and waits until it has
// built the mounts.
func startSandbox(s *Spec) (int, error) {
	if s.IdleTimeout == 0 {
		s.IdleTimeout = idleTimeout()
	}
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	// The init gets an open description of the lock file of its own, so
	// that its lock and the launchers' are distinct (flock locks belong to
	// open descriptions).
	lock, err := os.Open(recordPath(s.Label, s.Revision) + ".lock")
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	specR, specW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer specW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		specR.Close()
		return 0, err
	}
	defer readyR.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID
	if !s.Network {
		flags |= unix.CLONE_NEWNET
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"paddock", SandboxArg}, &syscall.ProcAttr{
		Env:   []string{},
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd(), specR.Fd(), readyW.Fd(), lock.Fd()},
		Sys:   &syscall.SysProcAttr{Cloneflags: uintptr(flags), Setsid: true},
	})
	specR.Close()
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("cannot start the sandbox of %s: %w", s.Label, err)
	}
	specW.Write(data)
	specW.Close()
	answer, _ := io.ReadAll(io.LimitReader(readyR, 4096))
	if string(answer) != "ok" {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		if len(answer) == 0 {
			answer = []byte("its init ended before it was ready")
		}
		return 0, fmt.Errorf("cannot set up the sandbox of %s: %s", s.Label, answer)
	}
	return pid, nil
}

func readRecord(path string) (sandboxRecord, bool) {
	var rec sandboxRecord
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.PID <= 0 {
		return rec, false
	}
	// A record whose init is gone (or whose PID now names another process) is stale.
	if procstat.StartTime(rec.PID) != rec.Start {
		return rec, false
	}
	return rec, true
}

// stopInit kills a sandbox's init, which ends every process in its PID
// namespace, and waits for it to be gone.
func stopInit(rec sandboxRecord) {
	if procstat.StartTime(rec.PID) != rec.Start {
		return
	}
	syscall.Kill(rec.PID, syscall.SIGKILL)
	// The init ends once the kernel has killed and reaped everything in its
	// PID namespace, which takes a while on a loaded machine: the app's
	// cgroup is only empty then (TestRunHello's remove failed, its cgroup
	// still busy, after a wait of 1 s).
	for range 1000 {
		if procstat.StartTime(rec.PID) != rec.Start {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StopSandboxes stops the kept sandboxes of app (of revision rev, or of
// every revision when rev is 0), with every process running in them. The
// agent calls it when a revision or the app goes.
func StopSandboxes(app string, rev int) error {
	pattern := fmt.Sprintf("paddock.%s.*.json", app)
	if rev > 0 {
		pattern = fmt.Sprintf("paddock.%s.*.%d.json", app, rev)
	}
	paths, err := filepath.Glob(filepath.Join(nsDir(), pattern))
	if err != nil {
		return err
	}
	for _, p := range paths {
		if rec, ok := readRecord(p); ok {
			stopInit(rec)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot stop the sandbox of %s: %w", app, err)
		}
		os.Remove(strings.TrimSuffix(p, ".json") + ".json.lock")
		os.Remove(strings.TrimSuffix(p, ".json") + ".launch")
	}
	return nil
}

// RetireSandboxes asks the init of every kept sandbox to end as soon as no
// app process is left in it: at once for an idle one. The agent calls it
// when it stops, so that no sandbox outlives it holding mounts of its
// packages.
func RetireSandboxes() {
	paths, _ := filepath.Glob(filepath.Join(nsDir(), "*.json"))
	for _, p := range paths {
		if rec, ok := readRecord(p); ok {
			syscall.Kill(rec.PID, syscall.SIGTERM)
		}
	}
}

// lockFile opens path and takes an exclusive lock on it, released on Close.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flock takes (or converts to) the lock how on f, waiting for it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return os.NewSyscallError("flock", err)
		}
	}
}
