package ifacemgr

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"paddock.dev/paddock/internal/names"
)

// plugRe is the shape of a plug or slot name, as app.yaml and gadget.yaml
// write them.
var plugRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*$`) })

// maxPlugLen bounds a plug or slot name.
const maxPlugLen = 64

// PlugRef names one plug of one app: APP:PLUG.
type PlugRef struct {
	App, Plug string
}

func (p PlugRef) String() string { return p.App + ":" + p.Plug }

// ParsePlug parses APP:PLUG as a user wrote it. The error quotes at most
// a bounded part of s.
func ParsePlug(s string) (PlugRef, error) {
	app, plug, ok := strings.Cut(s, ":")
	if !ok || !names.Valid(app) || !validName(plug) {
		return PlugRef{}, fmt.Errorf("invalid plug %q (want APP:PLUG, like hello:serial-port)", shorten(s))
	}
	return PlugRef{App: app, Plug: plug}, nil
}

// ParseSlot parses a slot as a user wrote it: the name of a slot of the
// gadget (serial1), the system's slot of an interface (:network), or a
// slot of another app (APP:SLOT, for content).
func ParseSlot(s string) (string, error) {
	if validName(strings.TrimPrefix(s, ":")) {
		return s, nil
	}
	if app, slot, ok := strings.Cut(s, ":"); ok && names.Valid(app) && validName(slot) {
		return s, nil
	}
	return "", fmt.Errorf("invalid slot %q (want the name of a slot of the gadget, like serial1, :INTERFACE for the system's slot, or APP:SLOT for another app's)", shorten(s))
}

func validName(s string) bool { return len(s) <= maxPlugLen && plugRe().MatchString(s) }

// shorten bounds what an error quotes of a user's input.
func shorten(s string) string {
	if len(s) > 2*maxPlugLen {
		return s[:2*maxPlugLen] + "..."
	}
	return s
}
