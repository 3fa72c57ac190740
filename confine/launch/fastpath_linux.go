//go:build linux && cgo

// The fast path of 'paddock run', fastpath.c, is linked into the binary
// through this file: a constructor that runs before the Go runtime starts.

package launch

import "C"
