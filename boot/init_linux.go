package boot

import (
	"fmt"
	"os"
	"os/signal"
)

// runStage runs stage st as PID 1 and does not return: on failure it
// prints the reason and powers off, or starts a shell with paddock.debug=1.
func runStage(con *console, st stage) {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, initSignals...) // first: the default action of SIGTERM would kill init
	defer func() {
		if r := recover(); r != nil {
			fail(con, fmt.Errorf("internal error: %v", r), false)
		}
	}()
	var debug bool
	var err error
	if st == stageInitramfs {
		debug, err = stage1(con, signals)
	} else {
		debug, err = stage2(con, signals, nil)
	}
	fail(con, err, debug)
}

// fail reports a failed boot and powers off, or with debug starts a shell
// on the console in place of init.
func fail(con *console, err error, debug bool) {
	con.bootFailed(err)
	if triedBoot && !debug {
		// The next boot counts this attempt, and falls back once they
		// are used up.
		con.logf("a tried base failed: rebooting")
		finish(con, reboot)
	}
	if debug {
		con.logf("paddock.debug=1: starting %s on the console", shellBinary)
		con.logf("%v", execInit([]string{shellBinary}, childEnv(os.Environ())))
	}
	finish(con, powerOff)
}
