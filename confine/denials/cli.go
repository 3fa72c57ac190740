package denials

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"paddock.dev/paddock/internal/cli"
)

const usage = `Usage: paddock debug denials [APP] [--json] [--file FILE]

Lists what the sandbox refused to APP (every app when APP is left out): the
seccomp and AppArmor denials in the kernel log, or in FILE (a saved dmesg,
journalctl -k or /var/log/audit/audit.log), one per line, each with the
interface that would allow it or the reason none can. In devmode, accesses
that would have been denied are listed too ("allowed").

Example:
  paddock debug denials hello
  paddock debug denials --file dmesg.txt --json`

// kmsgPath is the kernel log; tests point it at a file.
var kmsgPath = "/dev/kmsg"

// NewCommand returns 'paddock debug denials', whose hints come from the
// rules of the interface catalog c.
func NewCommand(c Catalog) func(args []string, stdout, stderr io.Writer) error {
	return c.run
}

func (c Catalog) run(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("debug denials", usage, stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	file := fs.String("file", "", "read kernel log lines from `FILE` instead of /dev/kmsg")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return cli.UsageError("debug denials takes at most one app name")
	}
	var app string
	if len(pos) == 1 {
		app = pos[0]
	}
	log, err := readLog(*file)
	if err != nil {
		return err
	}
	ds, err := ReadKernelLog(bytes.NewReader(log), app)
	if err != nil {
		return err
	}
	if *asJSON {
		return cli.WriteJSON(stdout, c.explained(ds))
	}
	return c.printText(stdout, ds, app)
}

// jsonDenial is a denial with its hint, as --json prints it.
type jsonDenial struct {
	Denial
	Plug        string `json:"plug"`
	Explanation string `json:"explanation"`
}

func (c Catalog) explained(ds []Denial) []jsonDenial {
	out := make([]jsonDenial, 0, len(ds))
	for _, d := range ds {
		out = append(out, jsonDenial{d, c.Hint(d), c.Explain(d)})
	}
	return out
}

func (c Catalog) printText(w io.Writer, ds []Denial, app string) error {
	if len(ds) == 0 {
		what := "any app"
		if app != "" {
			what = app
		}
		_, err := fmt.Fprintf(w, "no denials for %s in the kernel log\n", what)
		return err
	}
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, c.Format(d)); err != nil {
			return err
		}
	}
	return nil
}

// Format renders d on one line with its explanation:
//
//	2026-11-23 12:00:00 paddock.hello.hello apparmor denied open /dev/ttyUSB0 (rw): the serial-port interface ...
func (c Catalog) Format(d Denial) string {
	var b strings.Builder
	if !d.Time.IsZero() {
		b.WriteString(d.Time.Format(time.DateTime) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s ", d.Label, d.Kind, strings.ToLower(d.Action))
	switch {
	case d.Kind == "seccomp":
		fmt.Fprintf(&b, "%s (%s %d)", d.Syscall, d.Arch, d.SyscallNr)
	case d.Capability != "":
		fmt.Fprintf(&b, "%s capability %s", d.Operation, d.Capability)
	case d.Family != "":
		fmt.Fprintf(&b, "%s %s %s", d.Operation, d.Family, d.SockType)
	default:
		fmt.Fprintf(&b, "%s %s", d.Operation, d.Path)
		if d.Requested != "" {
			fmt.Fprintf(&b, " (%s)", d.Requested)
		}
	}
	if d.Comm != "" {
		fmt.Fprintf(&b, " by %s", d.Comm)
	}
	if d.PID != 0 {
		fmt.Fprintf(&b, "[%d]", d.PID)
	}
	b.WriteString(": " + c.Explain(d))
	return b.String()
}

// readLog reads file, or the kernel log when file is empty.
func readLog(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read kernel log: %w", err)
		}
		return b, nil
	}
	return readKmsg(kmsgPath)
}
