//go:build !linux || !cgo

package seccomp

import "errors"

// Compile needs cgo and libseccomp: this binary was built without them.
func Compile(p Policy) ([]byte, error) {
	return nil, errors.New("cannot compile seccomp policy: this paddock was built without cgo and libseccomp (rebuild with CGO_ENABLED=1 and libseccomp-dev, or compile profiles on a build that has them)")
}
