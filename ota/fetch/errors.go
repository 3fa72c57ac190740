package fetch

import (
	"errors"
	"net/url"
	"strings"
)

// errRestart means the partial file was dropped and the next attempt starts
// from byte 0 at once, without counting as a failure.
var errRestart = errors.New("restart from scratch")

// errStalled ends an attempt that received nothing for stallTimeout.
var errStalled = errors.New("no data received for too long")

// mirrorError is what went wrong with one mirror: one line that names the
// URL, the problem and, when there is one, what to do.
type mirrorError struct {
	url       string
	err       error
	hint      string
	permanent bool // retrying this mirror cannot help
}

func (e *mirrorError) Error() string {
	s := e.url + ": " + e.err.Error()
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

func (e *mirrorError) Unwrap() error { return e.err }

// isPermanent reports whether err says the mirror itself is wrong.
func isPermanent(err error) bool {
	var me *mirrorError
	return errors.As(err, &me) && me.permanent
}

// localError is a problem on this side (the disk), which no mirror can fix.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// mirrorErrors lists why each mirror failed, on one line.
type mirrorErrors []error

func (m mirrorErrors) Error() string {
	s := make([]string, len(m))
	for i, err := range m {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (m mirrorErrors) Unwrap() []error { return m }

// netError drops the `Get "URL":` prefix of a client error: the URL is
// named once, by mirrorError.
func netError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
