package qemu

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// maxCmdline is the kernel's COMMAND_LINE_SIZE on amd64 and arm64, less
// room for what the boot loader path adds.
const maxCmdline = 2000

// WithCommand returns c with paddock.cmd=BASE64(command) on the kernel
// command line: the guest runs command once its agent is ready, between
// the console's "paddock: cmd begin" and "paddock: cmd end CODE" lines,
// and powers off. For a test that drives the guest while the command runs
// (Start, then Expect); RunCommand does it all.
func WithCommand(c Config, command string) (Config, error) { return withCommand(c, command) }

func withCommand(c Config, command string) (Config, error) {
	command = waitForDisks(len(c.Disks)+len(c.ReadOnlyDisks)) + command
	arg := "paddock.cmd=" + base64.StdEncoding.EncodeToString([]byte(command))
	c.Append = strings.TrimSpace(c.Append + " " + arg)
	if n := len(consoleArgs[AMD64]) + 1 + len(c.Append); n > maxCmdline {
		return c, fmt.Errorf("cannot pass the command on the kernel command line: %d bytes is too long (at most %d; put a script on a disk instead)", n, maxCmdline)
	}
	return c, nil
}

// readCommand follows the console protocol of a paddock.cmd boot: the agent
// gets ready, the command begins and ends with an exit code. It returns the
// lines between "paddock: cmd begin" and "paddock: cmd end CODE", joined by
// newlines (without a final one), and the code.
func readCommand(ctx context.Context, con *console) (string, int, error) {
	if _, _, err := con.expect(ctx, strconv.Quote(markerReady), containsMatch(markerReady)); err != nil {
		return "", 0, err
	}
	_, begin, err := con.expect(ctx, strconv.Quote(markerCmdBegin), func(line string) []string {
		if strings.TrimSpace(line) == markerCmdBegin {
			return []string{line}
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	// Anchored, so that the command's own output cannot end it early
	// unless it prints the whole marker line.
	m, end, err := con.expect(ctx, strconv.Quote(markerCmdEnd+"CODE"), func(line string) []string {
		return cmdEndRe.FindStringSubmatch(strings.TrimSpace(line))
	})
	if err != nil {
		// What the command printed before it failed helps the caller.
		if end < 0 {
			return strings.Join(con.linesAfter(begin), "\n"), 0, err
		}
		return strings.Join(con.linesBetween(begin, end), "\n"), 0, err
	}
	code, err := strconv.Atoi(m[1])
	if err != nil {
		return "", 0, fmt.Errorf("cannot read exit code in %q: %w", m[0], err)
	}
	return strings.Join(con.linesBetween(begin, end), "\n"), code, nil
}

// linesAfter returns the complete lines after index from.
func (c *console) linesAfter(from int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[from+1:]...)
}

// waitForDisks returns a shell line that waits up to 10 s for n virtio
// disks to have their nodes, or "" for one disk. The boot waits only for
// the disk it boots from; the kernel may still be probing the others when
// the agent is ready and the command starts (a loaded host showed a
// command reading /dev/vdc before it existed).
func waitForDisks(n int) string {
	if n < 2 {
		return ""
	}
	return fmt.Sprintf("i=0; while [ $(ls /dev/vd? 2>/dev/null | wc -l) -lt %d ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n", n)
}
