package boot

import (
	"errors"
	"testing"
	"time"
)

func TestConsoleLines(t *testing.T) {
	var buf syncBuffer
	c := newConsole(&buf)
	c.line(msgCmdBegin)
	c.Write([]byte("no newline"))
	c.line(msgCmdEnd + "0")
	c.Write([]byte("line\n"))
	c.bootFailed(errors.New("two\nlines"))
	want := "paddock: cmd begin\nno newline\npaddock: cmd end 0\nline\npaddock: boot failed: two; lines\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestConsoleTrace checks the step lines of paddock.trace, whose format the
// boot benchmark reads: nothing without it, "paddock init: S.SSSs STEP" with it.
func TestConsoleTrace(t *testing.T) {
	var buf syncBuffer
	c := newConsole(&buf)
	c.uptime = func() time.Duration { return 1234567 * time.Microsecond }
	c.tracef("hidden %d", 1)
	c.trace = true
	c.tracef("modules loaded")
	if got, want := buf.String(), "paddock init: 1.235s modules loaded\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
