package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/internal/atomicfile"
)

// User is who the commands of an app revision run as: the app's own
// unprivileged user and group, or root where the app asks for it and its
// publisher's delegation grants it. The agent writes it when it installs
// the revision (WriteUser); launches read it.
type User struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Root marks the only User with UID and GID 0.
	Root bool `json:"root,omitempty"`
}

// check refuses a User that would run as root without saying so, so that
// a zero value or a damaged file never means root.
func (u User) check() error {
	switch {
	case u.Root && (u.UID != 0 || u.GID != 0):
		return fmt.Errorf("root with uid %d and gid %d", u.UID, u.GID)
	case !u.Root && (u.UID <= 0 || u.GID <= 0):
		return fmt.Errorf("uid %d and gid %d, not an app's own user", u.UID, u.GID)
	}
	return nil
}

// UserPath is where the agent keeps the User of revision rev of app,
// readable by root only, next to the revision's profiles.
func UserPath(app string, rev int) string {
	return filepath.Join(profiles.Dir(app, rev), "user.json")
}

// WriteUser records u as the User of revision rev of app.
func WriteUser(app string, rev int, u User) error {
	if err := u.check(); err != nil {
		return fmt.Errorf("internal error: user of %s: %w", app, err)
	}
	data, _ := json.Marshal(u)
	if err := os.MkdirAll(profiles.Dir(app, rev), 0o755); err != nil {
		return fmt.Errorf("cannot record the user of %s: %w", app, err)
	}
	return atomicfile.WriteFile(UserPath(app, rev), append(data, '\n'), 0o600)
}

// ReadUser returns the User of revision rev of app.
func ReadUser(app string, rev int) (User, error) {
	var u User
	f, err := os.Open(UserPath(app, rev))
	if errors.Is(err, os.ErrNotExist) {
		return u, fmt.Errorf("cannot find the user that %s revision %d runs as (start the agent, which records it)", app, rev)
	}
	if err != nil {
		return u, fmt.Errorf("cannot read the user of %s: %w", app, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return u, fmt.Errorf("cannot read the user of %s: %w", app, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return User{}, fmt.Errorf("cannot read the user of %s in %s: not a user record (start the agent, which records it again)", app, UserPath(app, rev))
	}
	if err := u.check(); err != nil {
		return User{}, fmt.Errorf("cannot run %s: its user record %s names %w (start the agent, which records it again)", app, UserPath(app, rev), err)
	}
	return u, nil
}
