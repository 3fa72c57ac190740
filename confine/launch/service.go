package launch

import (
	"os"
	"strconv"
	"syscall"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/notify"
)

// StatusEnv names the environment variable with which the agent asks the
// launcher of a service to write the service's exit code to a file before
// it exits: the launcher of a re-adopted service is no longer the agent's
// child, so the agent cannot wait for it (see agent/services).
const StatusEnv = "PADDOCK_SERVICE_STATUS"

// writeStatus writes code where $PADDOCK_SERVICE_STATUS says, if it says.
func writeStatus(code int) {
	if p := os.Getenv(StatusEnv); p != "" {
		atomicfile.WriteFile(p, []byte(strconv.Itoa(code)+"\n"), 0o600)
	}
}

// notifyFD is the descriptor of the notify pipe that a notify service's
// supervisor passes to the launcher, which passes it on to the app under
// the same number, or 0 for none.
func notifyFD() int {
	if fd, err := strconv.Atoi(os.Getenv(notify.EnvFD)); err == nil && fd == 3 {
		return fd
	}
	return 0
}

// appFiles are the descriptors a launch passes to the app: the standard
// ones, and the notify pipe of a notify service.
func appFiles(s *Spec) []uintptr {
	if notifyFD() == 0 {
		return []uintptr{0, 1, 2}
	}
	return []uintptr{0, 1, 2, 3}
}

// appEnv adds to the app's environment the notify pipe's name.
func appEnv(env []string) []string {
	if fd := notifyFD(); fd != 0 {
		return append(env, notify.EnvFD+"="+strconv.Itoa(fd))
	}
	return env
}

// reexecEnv marks a service's launcher that was executed again.
const reexecEnv = "PADDOCK_SERVICE_REEXEC"

// reexecService executes the launcher of a service again once the sandbox
// is built and its launch file written, so that the fast path (fastpath.c)
// takes over: the launcher stays as the service's parent for as long as
// the service runs, and the fast path's process is a fraction of the Go
// launcher's memory. It returns only when it does not apply (not a
// service, a notify service, arguments, or executed again already) or
// the exec failed; then the Go launcher goes on.
func reexecService(s *Spec, lock interface{ Close() error }) {
	if os.Getenv(StatusEnv) == "" || os.Getenv(reexecEnv) != "" || notifyFD() != 0 || len(s.Argv) != s.BaseArgc {
		return
	}
	// The fast path takes the record's lock itself (shared); the sandbox
	// was just built or used, so its init is not idle long enough to end.
	lock.Close()
	syscall.Exec("/proc/self/exe", os.Args, append(os.Environ(), reexecEnv+"=1"))
}
