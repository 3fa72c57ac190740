package boot

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// The lines of the console protocol (see the package documentation).
const (
	msgReady     = "paddock: agent ready"
	msgCmdBegin  = "paddock: cmd begin"
	msgCmdEnd    = "paddock: cmd end " // + exit code
	msgPowerOff  = "paddock: power off"
	msgReboot    = "paddock: reboot"
	msgBootFail  = "paddock: boot failed: " // + reason
	logPrefix    = "paddock init: "
	cmdExitAbove = 128 // a command killed by signal N ends with code 128+N, as in sh
)

// console writes to the system console. Protocol lines always stand alone:
// when the output before them did not end a line, console ends it first.
type console struct {
	mu   sync.Mutex
	w    io.Writer
	last byte // the last byte written, 0 before any

	// trace, set by paddock.trace, makes tracef print; uptime reads the
	// time since the kernel started.
	trace  bool
	uptime func() time.Duration
}

func newConsole(w io.Writer) *console { return &console{w: w, uptime: uptime} }

// Write copies command output to the console.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 {
		c.last = p[len(p)-1]
	}
	return c.w.Write(p)
}

// line prints a protocol line on a line of its own.
func (c *console) line(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != 0 && c.last != '\n' {
		s = "\n" + s
	}
	io.WriteString(c.w, s+"\n")
	c.last = '\n'
}

// logf prints an informational line, told apart from protocol lines by its prefix.
func (c *console) logf(format string, args ...any) {
	c.line(logPrefix + fmt.Sprintf(format, args...))
}

// tracef prints a boot step with the time since the kernel started, when
// paddock.trace is on: "paddock init: 1.234s modules loaded".
func (c *console) tracef(format string, args ...any) {
	if c.trace {
		c.logf("%.3fs %s", c.uptime().Seconds(), fmt.Sprintf(format, args...))
	}
}

// bootFailed prints the failure line; newlines in the reason would break the
// protocol, so they become "; ".
func (c *console) bootFailed(err error) {
	c.line(msgBootFail + oneLine(err.Error()))
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
