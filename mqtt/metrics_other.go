//go:build !linux

package mqtt

import "errors"

// diskFree is only measured on Linux, the agent's only target.
func diskFree(dir string) (uint64, error) {
	return 0, errors.New("cannot measure free disk space: only supported on linux (run the agent on linux)")
}
