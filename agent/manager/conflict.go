package manager

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"paddock.dev/paddock/agent/state"
)

// A change records in its data, under touchesKey, the keys of what it
// works on: AppKey, ConnectionKey, BaseKey. Two changes that share a key
// never run at the same time.
const touchesKey = "touches"

// AppKey is the key of changes to the app called name.
func AppKey(name string) string { return "app:" + name }

// ConnectionKey is the key of changes to the connection of plug to slot.
func ConnectionKey(plug, slot string) string { return "connection:" + plug + "=" + slot }

// BaseKey is the key of changes to the base in slot.
func BaseKey(slot string) string { return "base:" + slot }

// Touch records that chg works on keys; the state must be locked.
func Touch(chg *state.Change, keys ...string) {
	all := Touches(chg)
	for _, k := range keys {
		if !slices.Contains(all, k) {
			all = append(all, k)
		}
	}
	chg.Set(touchesKey, all)
}

// Touches returns the keys chg works on; the state must be locked.
func Touches(chg *state.Change) []string {
	var keys []string
	chg.Get(touchesKey, &keys)
	return keys
}

// AppOf returns the app a change works on, from its keys, or "".
func AppOf(chg *state.Change) string {
	for _, k := range Touches(chg) {
		if name, ok := strings.CutPrefix(k, "app:"); ok && name != "" {
			return name
		}
	}
	return ""
}

// ErrInProgress means that a change in progress, or one about to be made,
// works on the same thing.
var ErrInProgress = errors.New("change in progress")

// ConflictError says what holds a key that a new change wanted.
type ConflictError struct {
	// Key is the key both want.
	Key string
	// Change is the change in progress that touches Key, or nil when a
	// reservation holds it (a change about to be made, such as an install
	// whose package is streaming in).
	Change *state.Change
	// Reserved says what reserved Key, when Change is nil.
	Reserved string
}

func (e *ConflictError) Error() string {
	if e.Change != nil {
		return fmt.Sprintf("change %s (%s) has not finished (see 'paddock changes'): %v", e.Change.ID(), e.Change.Summary(), ErrInProgress)
	}
	return fmt.Sprintf("%s is in progress: %v", e.Reserved, ErrInProgress)
}

// Unwrap makes errors.Is(err, ErrInProgress) hold.
func (e *ConflictError) Unwrap() error { return ErrInProgress }

// Conflicts is the agent's one conflict check: a new change may not touch
// a key that a change in progress touches, or that another request has
// reserved while it prepares its change, nor start where a manager's Rule
// says it conflicts. It is safe for concurrent use.
type Conflicts struct {
	st       *state.State
	mu       sync.Mutex
	reserved map[string]string // key → what reserved it
	rules    []Rule
}

// Rule is a manager's own conflict rule, beyond two changes sharing a key:
// it reports whether a new change that touches key may not start while a
// change touching inFlight is in progress (or reserved). A base update, for
// one, may want no app changes beside it.
type Rule func(key string, inFlight []string) bool

// AddRule adds a manager's rule to the check; managers add theirs when
// they are made, before the agent serves.
func (c *Conflicts) AddRule(r Rule) { c.rules = append(c.rules, r) }

// conflicts reports whether a new change touching key may not start
// beside one touching inFlight: they share the key, or a rule says so.
func (c *Conflicts) conflicts(key string, inFlight []string) bool {
	if slices.Contains(inFlight, key) {
		return true
	}
	for _, r := range c.rules {
		if r(key, inFlight) {
			return true
		}
	}
	return false
}

// NewConflicts returns the conflict check over the changes of st.
func NewConflicts(st *state.State) *Conflicts {
	return &Conflicts{st: st, reserved: map[string]string{}}
}

// Check returns a *ConflictError when a change in progress touches one of
// keys; the state must be locked. It ignores reservations: the request
// that holds them calls it.
func (c *Conflicts) Check(keys ...string) error {
	for _, chg := range c.st.ChangesInProgress() {
		touched := Touches(chg)
		for _, k := range keys {
			if c.conflicts(k, touched) {
				return &ConflictError{Key: k, Change: chg}
			}
		}
	}
	return nil
}

// Reserve holds keys for a change about to be made, named by what (such
// as "another upload of hello"), until release is called: once the change
// exists, which Check then finds, or when it will not be made. It returns
// a *ConflictError when a reservation or a change in progress holds one of
// keys. The state must not be locked.
func (c *Conflicts) Reserve(what string, keys ...string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		for rk, r := range c.reserved {
			if c.conflicts(k, []string{rk}) {
				return nil, &ConflictError{Key: k, Reserved: r}
			}
		}
	}
	c.st.Lock()
	err = c.Check(keys...)
	c.st.Unlock()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		c.reserved[k] = what
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, k := range keys {
				delete(c.reserved, k)
			}
		})
	}, nil
}
