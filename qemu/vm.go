package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VM is a running QEMU.
type VM struct {
	cmd    *exec.Cmd
	con    *console
	stderr *tailBuffer

	exited  chan struct{} // closed when QEMU has exited and its output is read
	waitErr error         // set before exited is closed

	mu         sync.Mutex
	killReason error // why this package killed QEMU, if it did
}

// ErrPowerCut is what Wait reports for a VM that PowerCut stopped.
var ErrPowerCut = errors.New("power cut")

// Start starts QEMU for c. When ctx ends or c.Timeout passes, QEMU is
// killed. The caller must call Wait (or PowerCut then Wait) to release it.
func Start(ctx context.Context, c Config) (*VM, error) {
	cmd, err := Command(c)
	if err != nil {
		return nil, err
	}
	v := &VM{cmd: cmd, con: newConsole(), stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	var out io.Writer = v.con
	if c.Console != nil {
		out = io.MultiWriter(v.con, ignoreErrors{c.Console})
	}
	cmd.Stdout = out
	cmd.Stderr = v.stderr
	cmd.Stdin = c.Stdin
	setSysProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("cannot start %s: not installed (apt-get install %s)", cmd.Args[0], qemuPackage(c.Arch))
		}
		return nil, fmt.Errorf("cannot start %s: %w", cmd.Args[0], err)
	}
	go v.wait()
	go v.watch(ctx, c.Timeout)
	return v, nil
}

func qemuPackage(a Arch) string {
	if a == ARM64 {
		return "qemu-system-arm"
	}
	return "qemu-system-x86"
}

// wait reaps QEMU; cmd.Wait returns once the console is read to its end.
func (v *VM) wait() {
	err := v.cmd.Wait()
	v.mu.Lock()
	reason := v.killReason
	v.mu.Unlock()
	switch {
	case reason != nil:
		err = reason
	case err != nil:
		if msg := strings.TrimSpace(v.stderr.String()); msg != "" {
			err = fmt.Errorf("%s: %w: %s", v.cmd.Args[0], err, msg)
		} else {
			err = fmt.Errorf("%s: %w", v.cmd.Args[0], err)
		}
	}
	v.waitErr = err
	v.con.close(err)
	close(v.exited)
}

// watch kills QEMU when ctx ends or the timeout passes.
func (v *VM) watch(ctx context.Context, timeout time.Duration) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-v.exited:
	case <-ctx.Done():
		v.kill(fmt.Errorf("qemu killed: %w", ctx.Err()))
	case <-expired:
		v.kill(fmt.Errorf("qemu killed: %w after %v", context.DeadlineExceeded, timeout))
	}
}

// kill stops the QEMU this VM started, by its process handle (never by
// name), and records why.
func (v *VM) kill(reason error) error {
	v.mu.Lock()
	if v.killReason == nil {
		v.killReason = reason
	}
	v.mu.Unlock()
	if err := v.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cannot kill qemu (pid %d): %w", v.cmd.Process.Pid, err)
	}
	return nil
}

// Expect waits until the console printed a whole line containing s, looking
// at the lines after the one the previous Expect matched. It fails early,
// with the last lines of the console in the error, when the guest prints
// "paddock: boot failed" (ErrBootFailed) or QEMU exits (ErrExited).
func (v *VM) Expect(ctx context.Context, s string) error {
	_, _, err := v.con.expect(ctx, strconv.Quote(s), containsMatch(s))
	return err
}

// ExpectRegexp is Expect for the first line that re matches; it returns
// the match and its submatches.
func (v *VM) ExpectRegexp(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	m, _, err := v.con.expect(ctx, "/"+re.String()+"/", regexpMatch(re))
	return m, err
}

// Output returns everything the guest printed so far.
func (v *VM) Output() string { return v.con.output() }

// PowerCut kills QEMU at once, as a power cut would stop the board; Wait
// then reports ErrPowerCut.
func (v *VM) PowerCut() error {
	select {
	case <-v.exited:
		return nil
	default:
	}
	return v.kill(ErrPowerCut)
}

// Wait waits until QEMU exits. A guest that powers off or reboots
// (-no-reboot) ends QEMU cleanly and Wait returns nil.
func (v *VM) Wait() error {
	<-v.exited
	return v.waitErr
}

// RunCommand boots c with paddock.cmd=BASE64(command), waits for the agent
// to get ready, collects the lines the guest prints between "paddock: cmd
// begin" and "paddock: cmd end CODE" (joined by newlines, without a final
// one), then waits for the guest to power off. Only an error that prevented
// reading the exit code is returned as err.
func RunCommand(ctx context.Context, c Config, command string) (output string, code int, err error) {
	c, err = withCommand(c, command)
	if err != nil {
		return "", 0, err
	}
	v, err := Start(ctx, c)
	if err != nil {
		return "", 0, err
	}
	output, code, err = readCommand(ctx, v.con)
	if err != nil {
		v.PowerCut()
		v.Wait()
		return output, code, err
	}
	if err := v.Wait(); err != nil {
		return output, code, fmt.Errorf("guest did not power off after the command: %w%s", err, v.con.tail())
	}
	return output, code, nil
}

// ignoreErrors keeps a failing Console writer from stopping the console.
type ignoreErrors struct{ w io.Writer }

func (w ignoreErrors) Write(p []byte) (int, error) {
	w.w.Write(p)
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it (QEMU's stderr, for
// error messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if n := b.buf.Len() - b.max; n > 0 {
		b.buf.Next(n)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
