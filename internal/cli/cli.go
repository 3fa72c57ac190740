// Package cli holds the small conventions every paddock command shares:
// flags that may follow positional arguments, --json output, and usage text
// that teaches.
package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks an error in how a command was called; main prints the usage
// hint with it and exits with code 2.
var ErrUsage = errors.New("usage error")

// UsageError reports a wrong call, wrapping ErrUsage.
func UsageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// NewFlagSet returns a flag set named name whose --help prints usage (a
// synopsis and a paragraph on what the command does) followed by the flags,
// to w.
func NewFlagSet(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintln(w, strings.TrimSpace(usage))
		var has bool
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(w, "\nOptions:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// Parse parses args into fs, allowing flags after positional arguments
// ("paddock sign hello.pdk --key pub"), and returns the positional arguments.
// A "--" ends flag parsing. It returns flag.ErrHelp for -h or --help.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" if rest is shorter than what it stopped on.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// WriteJSON writes v to w as indented JSON followed by a newline. Strings
// are escaped so that the output is safe on a terminal too: besides what
// encoding/json escapes (C0 controls, U+2028, U+2029, bytes that are not
// UTF-8), DEL, the C1 controls and format characters such as
// bidirectional overrides become \u escapes.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSON(b), '\n'))
	return err
}

// ExitCode is an error that only sets the exit code of the binary: the
// command already said what there was to say (paddock run passes on its
// app's exit code).
type ExitCode int

func (e ExitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }
