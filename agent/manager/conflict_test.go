package manager

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
)

func openState(t *testing.T) *state.State {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// addChange makes a change touching keys whose one task has status.
func addChange(st *state.State, status state.Status, keys ...string) *state.Change {
	st.Lock()
	defer st.Unlock()
	chg := st.NewChange("install", "Install something")
	Touch(chg, keys...)
	t := st.NewTask("step", "A step")
	chg.AddTask(t)
	t.SetStatus(status)
	return chg
}

func TestConflicts(t *testing.T) {
	tests := []struct {
		name     string
		status   state.Status // of a change touching app:hello and connection:hello:net=sys:net
		reserved []string     // keys reserved before
		keys     []string     // keys of the new change
		want     string       // in the error, "" for none
	}{
		{"same app in progress", state.DoStatus, nil, []string{AppKey("hello")}, "change 1 (Install something) has not finished"},
		{"same connection in progress", state.DoingStatus, nil, []string{ConnectionKey("hello:net", "sys:net")}, "has not finished"},
		{"second key of the new change", state.DoStatus, nil, []string{BaseKey("a"), AppKey("hello")}, "has not finished"},
		{"same app done", state.DoneStatus, nil, []string{AppKey("hello")}, ""},
		{"same app undone", state.UndoneStatus, nil, []string{AppKey("hello")}, ""},
		{"other app", state.DoStatus, nil, []string{AppKey("other")}, ""},
		{"app called like a base slot", state.DoStatus, nil, []string{AppKey("a")}, ""},
		{"reserved", state.DoneStatus, []string{AppKey("other")}, []string{AppKey("other")}, "another upload is in progress"},
		{"reserved other", state.DoneStatus, []string{AppKey("other")}, []string{AppKey("third")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openState(t)
			c := NewConflicts(st)
			addChange(st, tt.status, AppKey("hello"), ConnectionKey("hello:net", "sys:net"))
			if tt.reserved != nil {
				release, err := c.Reserve("another upload", tt.reserved...)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			}
			release, err := c.Reserve("new", tt.keys...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no conflict", err)
				}
				release()
				return
			}
			if err == nil || !errors.Is(err, ErrInProgress) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInProgress with %q", err, tt.want)
			}
		})
	}
}

func TestReleaseFreesOnce(t *testing.T) {
	st := openState(t)
	c := NewConflicts(st)
	release, err := c.Reserve("first", AppKey("hello"))
	if err != nil {
		t.Fatal(err)
	}
	release()
	second, err := c.Reserve("second", AppKey("hello"))
	if err != nil {
		t.Fatalf("reserve after release: got %v, want none", err)
	}
	release() // again: must not free the second reservation
	if _, err := c.Reserve("third", AppKey("hello")); err == nil || !strings.Contains(err.Error(), "second is in progress") {
		t.Errorf("reserve while the second holds it: got %v, want second is in progress", err)
	}
	second()
}

func TestTouchAndAppOf(t *testing.T) {
	st := openState(t)
	chg := addChange(st, state.DoStatus, BaseKey("b"), AppKey("hello"))
	st.Lock()
	defer st.Unlock()
	Touch(chg, AppKey("hello"), AppKey("hello"))
	if got, want := strings.Join(Touches(chg), " "), "base:b app:hello"; got != want {
		t.Errorf("touches: got %q, want %q", got, want)
	}
	if got := AppOf(chg); got != "hello" {
		t.Errorf("AppOf: got %q, want hello", got)
	}
	other := st.NewChange("base", "Update the base")
	Touch(other, BaseKey("a"))
	if got := AppOf(other); got != "" {
		t.Errorf("AppOf a change of no app: got %q, want none", got)
	}
}

// TestRules checks that a manager's rule is asked about changes in
// progress and reservations: here base updates want no app change beside
// them.
func TestRules(t *testing.T) {
	st := openState(t)
	c := NewConflicts(st)
	c.AddRule(func(key string, inFlight []string) bool {
		isBase := func(k string) bool { return strings.HasPrefix(k, "base:") }
		return isBase(key) || slices.ContainsFunc(inFlight, isBase)
	})
	release, err := c.Reserve("an app upload", AppKey("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve("a base update", BaseKey("b")); err == nil || !strings.Contains(err.Error(), "an app upload is in progress") {
		t.Errorf("base update beside a reserved app change: got %v, want the upload in progress", err)
	}
	release()
	addChange(st, state.DoingStatus, BaseKey("b"))
	if _, err := c.Reserve("an install", AppKey("other")); err == nil || !errors.Is(err, ErrInProgress) {
		t.Errorf("app change beside a base update in progress: got %v, want ErrInProgress", err)
	}
	// Without the rule, the two keys are unrelated.
	if _, err := NewConflicts(st).Reserve("an install", AppKey("other")); err != nil {
		t.Errorf("app change beside a base update, no rule: got %v, want none", err)
	}
}
