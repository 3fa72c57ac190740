// Package notify is how a supervised process tells its supervisor that it
// is ready, as s6 does with sd_notify's message: the supervisor passes the
// write end of a pipe and names its descriptor in $PADDOCK_NOTIFY_FD; the
// process writes "READY=1\n" there once it serves, then closes it. Init
// uses it to announce the agent ready without polling the agent's socket.
package notify

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// EnvFD names the environment variable that holds the descriptor number.
const EnvFD = "PADDOCK_NOTIFY_FD"

// readyLine is the message a ready process writes.
const readyLine = "READY=1"

// SendReady tells the supervisor, if there is one, that this process is
// ready: it writes the ready line to the descriptor that $PADDOCK_NOTIFY_FD
// names and closes it. It unsets the variable so that children do not
// inherit it. Without the variable it does nothing.
func SendReady() error {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("cannot tell the supervisor we are ready: %s=%q is not a descriptor above 2", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "notify")
	_, err = io.WriteString(f, readyLine+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot tell the supervisor we are ready: %w", err)
	}
	return nil
}

// WaitReady reads r, the read end of the pipe, until the ready line (true)
// or the end of the input, when the process exited or closed it without
// being ready (false). Other lines are skipped.
func WaitReady(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == readyLine {
			return true
		}
	}
	return false
}
