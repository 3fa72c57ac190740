//go:build !linux

package boot

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// sigUSR2 has no meaning here; init runs on Linux only.
var sigUSR2 os.Signal = syscall.Signal(-1)

// runStage refuses: init is Linux-only.
func runStage(con *console, st stage) {
	fmt.Fprintln(os.Stderr, "error: paddock init is the init of a Linux device: build paddock for linux and boot it in an image (or 'paddock vm run')")
	os.Exit(2)
}

// uptime is unknown here.
func uptime() time.Duration { return 0 }
