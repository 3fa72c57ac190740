package state

import (
	"fmt"
	"os"
	"strings"
)

// FaultEnv names the environment variable that injects crashes for tests:
// a comma-separated list of KIND:WHEN, where WHEN is one of
//
//	before       after the Doing checkpoint, before the do handler runs
//	after        after the do handler returns, before its result is checkpointed
//	undo-before  after the Undoing checkpoint, before the undo handler runs
//	undo-after   after the undo handler returns, before its result is checkpointed
//
// When the runner reaches such a point for a task of kind KIND, the process
// exits at once with FaultExitCode, skipping deferred calls, as a power cut
// would. Example: PADDOCK_FAULT=mount:after,start-services:undo-before
const FaultEnv = "PADDOCK_FAULT"

// FaultExitCode is the exit code of a process stopped by an injected fault.
const FaultExitCode = 99

// exit stops the process at an injected fault; tests replace it.
var exit = os.Exit

var faultPoints = []string{"before", "after", "undo-before", "undo-after"}

// parseFaults parses a FaultEnv value into a set of "KIND:WHEN".
func parseFaults(spec string) (map[string]bool, error) {
	faults := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndex(item, ":")
		if i <= 0 || !validFaultPoint(item[i+1:]) {
			return nil, fmt.Errorf("cannot use %s=%q: %q is not KIND:WHEN with WHEN one of %s",
				FaultEnv, spec, item, strings.Join(faultPoints, ", "))
		}
		faults[item] = true
	}
	return faults, nil
}

func validFaultPoint(when string) bool {
	for _, p := range faultPoints {
		if when == p {
			return true
		}
	}
	return false
}

// fault exits the process if a fault was injected at this point.
func (r *Runner) fault(kind, when string) {
	if r.faults[kind+":"+when] {
		// Say why the process stops, for whoever forgot the variable was set.
		fmt.Fprintf(os.Stderr, "paddock: injected fault %s:%s (%s), exiting\n", kind, when, FaultEnv)
		exit(FaultExitCode)
	}
}
