package boot

import (
	"errors"
	"testing"
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
