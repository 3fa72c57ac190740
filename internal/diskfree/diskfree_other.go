//go:build !linux

package diskfree

import "errors"

// Of returns what dir's filesystem has free; only Linux, where the agent
// runs, says.
func Of(dir string) (Space, error) {
	return Space{}, errors.New("free space is only read on Linux, where the agent runs")
}
