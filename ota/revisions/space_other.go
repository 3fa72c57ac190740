//go:build !linux

package revisions

import "errors"

// freeSpace is only known on Linux, where the agent runs.
func freeSpace(dir string) (Space, error) {
	return Space{}, errors.New("free space is only read on Linux, where the agent runs")
}
