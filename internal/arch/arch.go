// Package arch names CPU architectures the way Debian and paddock's
// assertions do (amd64, arm64, armhf), rather than Go's.
package arch

import "runtime"

// Debian maps a Go architecture name (runtime.GOARCH) to Debian's.
func Debian(goarch string) string {
	switch goarch {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch
}

// Native is this machine's architecture, in Debian's names.
func Native() string { return Debian(runtime.GOARCH) }
