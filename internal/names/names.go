// Package names holds the one rule for the names of apps and their
// commands, which end up in paths, labels and cgroup names: the manifest
// parser, the agent and the launcher all check names with it.
package names

import (
	"fmt"
	"regexp"
	"sync"
)

// MaxLen is the longest valid name.
const MaxLen = 40

var nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9](?:-?[a-z0-9])*$`) })

// Valid reports whether s is a valid app or command name: lowercase
// letters and digits with single dashes between them, at most MaxLen
// characters.
func Valid(s string) bool {
	return len(s) <= MaxLen && nameRe().MatchString(s)
}

// Pattern reports whether s has the shape of a name, whatever its length.
func Pattern(s string) bool { return nameRe().MatchString(s) }

// Check says what is wrong with a name a user gave for an app (what
// "app") or a command (what "command"), or returns nil. Names end up in
// paths: one that is not valid names nothing installed.
func Check(what, s string) error {
	if Valid(s) {
		return nil
	}
	shown := s
	if len(shown) > MaxLen+8 {
		shown = shown[:MaxLen+8] + "..."
	}
	return fmt.Errorf("invalid %s name %q (want lowercase letters and digits, with single dashes between them, at most %d characters)", what, shown, MaxLen)
}
