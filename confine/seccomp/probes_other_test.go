//go:build linux && cgo && !amd64

package seccomp

// archProbes are the probes of this architecture alone: none.
func archProbes() []probe { return nil }
