package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Executable is the paddock binary that the agent starts 'paddock run'
// from, for health probes and hooks; tests set it to a built binary.
var Executable = os.Executable

// RunChild runs 'paddock run ARGS...' from the agent: the launch of a
// command's health check or of a hook, in a process group of its own,
// killed whole when ctx ends. It returns the last max bytes of its output
// (stdout and stderr together), and an error with the exit status and the
// output's last line when it fails.
func RunChild(ctx context.Context, max int, args ...string) (string, error) {
	exe, err := Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the paddock binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"run"}, args...)...)
	out := &tailBuffer{max: max}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	last := lastLine(out.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if last == "" {
			return out.String(), fmt.Errorf("exit status %d", ee.ExitCode())
		}
		return out.String(), fmt.Errorf("exit status %d: %s", ee.ExitCode(), last)
	}
	return out.String(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
