//go:build !linux

package revisions

import "os"

func newWriteback(f *os.File) *os.File { return f }
