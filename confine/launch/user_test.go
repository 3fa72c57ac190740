package launch

import (
	"os"
	"strings"
	"testing"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/dirs/dirstest"
)

func TestUserRoundTrip(t *testing.T) {
	dirstest.SetRoot(t)
	for _, u := range []User{{UID: 70001, GID: 70001}, {Root: true}} {
		if err := WriteUser("hello", 1, u); err != nil {
			t.Fatal(err)
		}
		got, err := ReadUser("hello", 1)
		if err != nil || got != u {
			t.Errorf("got %+v, %v, want %+v", got, err, u)
		}
		if fi, err := os.Stat(UserPath("hello", 1)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("user record: got mode %v, %v, want 0600", fi.Mode(), err)
		}
	}
}

// TestUserNeverRootByAccident checks that only a record that says root
// runs an app as root: not a missing, empty, damaged or zero one.
func TestUserNeverRootByAccident(t *testing.T) {
	dirstest.SetRoot(t)
	if _, err := ReadUser("hello", 1); err == nil || !strings.Contains(err.Error(), "cannot find the user that hello revision 1 runs as") {
		t.Errorf("missing record: got %v", err)
	}
	for _, u := range []User{{}, {UID: 0, GID: 70001}, {UID: 70001, GID: 0}, {UID: -1, GID: 5}, {Root: true, UID: 70001, GID: 70001}} {
		if err := WriteUser("hello", 1, u); err == nil || !strings.Contains(err.Error(), "internal error") {
			t.Errorf("WriteUser(%+v): got %v, want an internal error", u, err)
		}
	}
	if err := os.MkdirAll(profiles.Dir("hello", 1), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ data, want string }{
		{"", "not a user record"},
		{"{}", "names uid 0 and gid 0, not an app's own user"},
		{`{"uid":0,"gid":0}`, "names uid 0 and gid 0, not an app's own user"},
		{`{"uid":70001,"gid":70001,"root":true}`, "names root with uid 70001"},
		{`{"uid":70001,"gid":70001,"admin":true}`, "not a user record"},
		{"root:x:0:0", "not a user record"},
	}
	for _, tt := range tests {
		if err := os.WriteFile(UserPath("hello", 1), []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		u, err := ReadUser("hello", 1)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("record %q: got %+v, %v, want an error containing %q", tt.data, u, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.data) && tt.data != "" && tt.data != "{}" {
			t.Errorf("record %q: the error quotes the file: %v", tt.data, err)
		}
	}
}
