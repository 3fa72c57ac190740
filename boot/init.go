package boot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"paddock.dev/paddock/internal/dirs"
)

// IsInit reports whether the command line args (os.Args) start paddock
// init: the binary run as /init (a name ending in "init") or 'paddock init'.
func IsInit(args []string) bool {
	if len(args) > 1 && args[1] == "init" {
		return true
	}
	return len(args) > 0 && strings.HasSuffix(filepath.Base(args[0]), "init")
}

// A stage is one of the two halves of init.
type stage int

const (
	stageInitramfs stage = 1 // mount the base and switch to it
	stageBase      stage = 2 // set up the base and supervise the agent
)

// Usage is the help text of 'paddock init'.
const Usage = `Usage: paddock init

The init (PID 1) of a paddock device; it refuses to run anywhere else.
In the initramfs it loads the kernel modules, picks the base slot from the
boot environment, mounts the base and the data partition and switches to
the base; in the base it supervises 'paddock daemon' and powers off on
SIGTERM or SIGUSR2 (reboots on SIGINT). See 'go doc paddock.dev/paddock/boot'.
`

// Main runs paddock init and does not return. It is the entry point of the
// binary run as /init in the initramfs (stage 1) and of 'paddock init' in
// the base (stage 2, told apart by /etc/paddock-base). Anywhere but PID 1 it
// prints an error and exits.
func Main() {
	if len(os.Args) > 2 && (os.Args[2] == "-h" || os.Args[2] == "--help") {
		fmt.Print(Usage)
		os.Exit(0)
	}
	// init runs on the real root whatever PADDOCK_ROOT says, as the agent
	// it starts does (childEnv).
	dirs.SetRootDir("/")
	st, err := whichStage(os.Getpid())
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	runStage(newConsole(os.Stdout), st) // PID 1 from here: never exits
}

// whichStage tells the stages apart: the base ships /etc/paddock-base.
func whichStage(pid int) (stage, error) {
	_, err := os.Stat(baseMarker)
	switch {
	case err == nil && pid == 1:
		return stageBase, nil
	case err == nil:
		return 0, fmt.Errorf("paddock init is the device's init and runs as PID 1 only (this is PID %d; to stop the device send SIGTERM to PID 1)", pid)
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("cannot tell the boot stage: %w", err)
	case pid == 1:
		return stageInitramfs, nil
	}
	return 0, fmt.Errorf("paddock init is the init of a paddock device and does not run on a host (no %s, not PID 1)", baseMarker)
}

// firstLine returns the first line of s without surrounding space.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
