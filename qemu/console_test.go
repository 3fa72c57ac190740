package qemu

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// feed writes stream to a new console in chunks of n bytes from another
// goroutine, then closes it with exitErr.
func feed(stream string, n int, exitErr error) *console {
	con := newConsole()
	go func() {
		for len(stream) > 0 {
			k := min(n, len(stream))
			con.Write([]byte(stream[:k]))
			stream = stream[k:]
		}
		con.close(exitErr)
	}()
	return con
}

func TestReadCommand(t *testing.T) {
	tests := []struct {
		name     string
		stream   string
		wantOut  string
		wantCode int
		wantErr  error  // nil for success
		wantMsg  string // in the error
	}{{
		name:     "output and code",
		stream:   "[    0.5] kernel noise\r\npaddock: agent ready\r\npaddock: cmd begin\r\nhello\r\npaddock: cmd end 3\r\npaddock: power off\r\n",
		wantOut:  "hello",
		wantCode: 3,
	}, {
		name:     "several lines, zero",
		stream:   "paddock: agent ready\npaddock: cmd begin\none\n\nthree\npaddock: cmd end 0\n",
		wantOut:  "one\n\nthree",
		wantCode: 0,
	}, {
		name:    "no output",
		stream:  "paddock: agent ready\npaddock: cmd begin\npaddock: cmd end 127\n",
		wantOut: "", wantCode: 127,
	}, {
		// The command's own output may mention the marker without ending it.
		name:     "marker inside output",
		stream:   "paddock: agent ready\npaddock: cmd begin\necho paddock: cmd end 5 now\npaddock: cmd end 1\n",
		wantOut:  "echo paddock: cmd end 5 now",
		wantCode: 1,
	}, {
		name:    "boot failed",
		stream:  "early\npaddock: boot failed: no base slot\n",
		wantErr: ErrBootFailed,
		wantMsg: "no base slot",
	}, {
		name:    "boot failed during the command",
		stream:  "paddock: agent ready\npaddock: cmd begin\nhalf\npaddock: boot failed: agent died\n",
		wantOut: "half",
		wantErr: ErrBootFailed,
		wantMsg: "agent died",
	}, {
		name:    "exit without markers",
		stream:  "Kernel panic - not syncing: No working init found\n",
		wantErr: ErrExited,
		wantMsg: "No working init found",
	}, {
		name:    "exit without end",
		stream:  "paddock: agent ready\npaddock: cmd begin\npartial\n",
		wantOut: "partial",
		wantErr: ErrExited,
		wantMsg: `"paddock: cmd end CODE"`,
	}, {
		name:    "exit with nothing",
		stream:  "",
		wantErr: ErrExited,
		wantMsg: "printed nothing",
	}}
	for _, tt := range tests {
		for _, chunk := range []int{1, 7, 4096} {
			t.Run(tt.name, func(t *testing.T) {
				out, code, err := readCommand(context.Background(), feed(tt.stream, chunk, nil))
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("got error %q, want it to contain %q", err, tt.wantMsg)
				}
				if out != tt.wantOut || code != tt.wantCode {
					t.Errorf("got %q, %d, want %q, %d", out, code, tt.wantOut, tt.wantCode)
				}
			})
		}
	}
}

func TestReadCommandContext(t *testing.T) {
	con := newConsole()
	con.Write([]byte("paddock: agent ready\nstuck"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := readCommand(ctx, con)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("got %v, want a deadline error quoting the console", err)
	}
}

func TestExpectInOrder(t *testing.T) {
	con := newConsole()
	v := &VM{con: con}
	ctx := context.Background()
	// Printed before anyone waits: still seen.
	con.Write([]byte("a 1\nb 2\na 3\n"))
	if err := v.Expect(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	m, err := v.ExpectRegexp(ctx, regexp.MustCompile(`^a (\d)$`))
	if err != nil || m[1] != "3" {
		t.Fatalf("got %q, %v, want the a after b (3)", m, err)
	}
	// A line is matched only once it is complete.
	con.Write([]byte("value 1"))
	done := make(chan []string)
	go func() {
		m, _ := v.ExpectRegexp(ctx, regexp.MustCompile(`^value (\d+)$`))
		done <- m
	}()
	time.Sleep(20 * time.Millisecond)
	con.Write([]byte("2\r\n"))
	if m := <-done; m == nil || m[1] != "12" {
		t.Errorf("got %q, want value 12", m)
	}
	if got, want := v.Output(), "a 1\nb 2\na 3\nvalue 12\r\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
	con.close(errors.New("signal: killed"))
	if err := v.Expect(ctx, "never"); !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("got %v, want ErrExited saying killed", err)
	}
}

func TestWithCommand(t *testing.T) {
	c, err := withCommand(Config{Append: "paddock.slot=a"}, "echo hi; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if want := "paddock.slot=a paddock.cmd=ZWNobyBoaTsgZXhpdCAz"; c.Append != want {
		t.Errorf("got %q, want %q", c.Append, want)
	}
	if _, err := withCommand(Config{}, strings.Repeat("x", 2000)); err == nil {
		t.Error("got no error for a command too long for the kernel command line")
	}
}

func FuzzReadCommand(f *testing.F) {
	f.Add("paddock: agent ready\npaddock: cmd begin\nhello\npaddock: cmd end 3\n")
	f.Add("paddock: boot failed: x\n")
	f.Add("paddock: agent ready\r\npaddock: cmd begin\r\npaddock: cmd end -99999999999999999999\r\n")
	f.Fuzz(func(t *testing.T, stream string) {
		con := newConsole()
		con.Write([]byte(stream))
		con.close(nil)
		out, code, err := readCommand(context.Background(), con)
		if err == nil && !strings.Contains(stream, markerCmdEnd) {
			t.Errorf("got code %d (output %q) from a stream without its end marker", code, out)
		}
	})
}
