package qemu

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Console protocol lines of package boot (see boot/doc.go).
const (
	markerReady      = "paddock: agent ready"
	markerCmdBegin   = "paddock: cmd begin"
	markerCmdEnd     = "paddock: cmd end "
	markerPowerOff   = "paddock: power off"
	markerBootFailed = "paddock: boot failed"
)

var cmdEndRe = regexp.MustCompile(`^paddock: cmd end (-?[0-9]+)$`)

var (
	// ErrBootFailed is returned by Expect when the guest printed
	// "paddock: boot failed: REASON".
	ErrBootFailed = errors.New("guest boot failed")
	// ErrExited is returned by Expect when QEMU exited before the console
	// printed what was expected.
	ErrExited = errors.New("qemu exited")
)

// tailLines is how much of the console an error quotes.
const tailLines = 20

// console keeps what the guest printed, split into lines, and lets callers
// wait for a line in order: each expect starts after the line the previous
// one matched, so nothing printed between two calls is missed.
type console struct {
	mu      sync.Mutex
	all     strings.Builder
	lines   []string // complete lines, without "\r\n"
	partial string   // the last line, until its newline
	next    int      // the first line the next expect looks at
	done    bool     // no more output: QEMU exited
	doneErr error    // why, if not a clean exit
	changed chan struct{}
}

func newConsole() *console {
	return &console{changed: make(chan struct{})}
}

// Write adds guest output.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all.Write(p)
	s := c.partial + string(p)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		c.lines = append(c.lines, strings.TrimRight(s[:i], "\r"))
		s = s[i+1:]
	}
	c.partial = s
	c.notify()
	return len(p), nil
}

// close marks the end of output; err says why, nil for a clean exit. A
// last line without newline counts as a line.
func (c *console) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if c.partial != "" {
		c.lines = append(c.lines, strings.TrimRight(c.partial, "\r"))
		c.partial = ""
	}
	c.done, c.doneErr = true, err
	c.notify()
}

// notify wakes every waiter; c.mu is held.
func (c *console) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *console) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all.String()
}

// expect waits for the first line from c.next on for which match returns
// non-nil, moves c.next past it and returns the match and the line's index.
// It fails early if the guest reports a failed boot or the output ends; the
// index is then that of the failure line, or the number of lines, or -1
// when ctx ended.
func (c *console) expect(ctx context.Context, what string, match func(string) []string) ([]string, int, error) {
	for {
		c.mu.Lock()
		for ; c.next < len(c.lines); c.next++ {
			line := c.lines[c.next]
			if m := match(line); m != nil {
				c.next++
				c.mu.Unlock()
				return m, c.next - 1, nil
			}
			if i := strings.Index(line, markerBootFailed); i >= 0 {
				c.next++
				err := fmt.Errorf("%w while waiting for %s: %s%s", ErrBootFailed, what,
					strings.TrimPrefix(line[i+len(markerBootFailed):], ": "), c.tailLocked())
				c.mu.Unlock()
				return nil, c.next - 1, err
			}
		}
		if c.done {
			err := fmt.Errorf("%w while waiting for %s", ErrExited, what)
			if c.doneErr != nil {
				err = fmt.Errorf("%w while waiting for %s (%v)", ErrExited, what, c.doneErr)
			}
			err = fmt.Errorf("%w%s", err, c.tailLocked())
			n := len(c.lines)
			c.mu.Unlock()
			return nil, n, err
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, -1, fmt.Errorf("cannot see %s on the console: %w%s", what, ctx.Err(), c.tail())
		}
	}
}

// linesBetween returns the complete lines with index in (from, to).
func (c *console) linesBetween(from, to int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[from+1:to]...)
}

func (c *console) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tailLocked()
}

// tailLocked formats the last lines of the console for an error message.
func (c *console) tailLocked() string {
	lines := c.lines
	if c.partial != "" {
		lines = append(lines[:len(lines):len(lines)], c.partial)
	}
	if len(lines) == 0 {
		return "\n(the console printed nothing)"
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return "\nconsole (last lines):\n\t" + strings.Join(lines, "\n\t")
}

func containsMatch(s string) func(string) []string {
	return func(line string) []string {
		if strings.Contains(line, s) {
			return []string{line}
		}
		return nil
	}
}

func regexpMatch(re *regexp.Regexp) func(string) []string {
	return re.FindStringSubmatch
}
