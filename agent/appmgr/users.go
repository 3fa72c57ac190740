package appmgr

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// Each app runs as a user of its own, like Android's app ids and systemd's
// DynamicUser: the agent gives it one id, used as both its user and group
// id, from FirstAppID to LastAppID, at its first install, and keeps it in
// the state. The range lies in what systemd leaves unused (above 65535,
// below the container ranges from 524288), so it meets neither the base's
// users (below 60000 by convention, each checked at allocation), nor
// systemd's dynamic users, nor nobody (65534).
//
// An id is never given to another app: a removed app keeps its id in the
// state, and gets it back if it is installed again. So no data left of an
// old app, wherever it lies, can be another app's. 10000 distinct app
// names fit in a device's life.
const (
	FirstAppID = 70000
	LastAppID  = 79999
)

// appIDsKey is where the apps' ids are kept in the state: name to id.
const appIDsKey = "app-ids"

// The base's user and group databases, whose ids apps never get. The
// sandbox shows the host's own base, whatever the root directory.
var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// appIDLocked returns the id of app name, giving it one when it has none;
// the state must be locked.
func (m *Manager) appIDLocked(name string) (int, error) {
	ids := map[string]int{}
	if err := m.st.Get(appIDsKey, &ids); err != nil && !errors.Is(err, state.ErrNoState) {
		return 0, fmt.Errorf("internal error: cannot read the apps' ids: %w", err)
	}
	if id, ok := ids[name]; ok {
		return id, nil
	}
	used, err := baseIDs()
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		used[id] = true
	}
	for id := FirstAppID; id <= LastAppID; id++ {
		if !used[id] {
			ids[name] = id
			m.st.Set(appIDsKey, ids)
			return id, nil
		}
	}
	return 0, fmt.Errorf("cannot give %s a user: every id from %d to %d is taken (ids of removed apps are not given to others)", name, FirstAppID, LastAppID)
}

// ownerOf is the owner of the data of an app that runs as u.
func ownerOf(u launch.User) revisions.Owner {
	return revisions.Owner{UID: u.UID, GID: u.GID}
}

// recordUser checks that revision rev of app name may run as the user its
// manifest asks for, records who its commands run as, and returns it:
// root only when the manifest says user: root and the publisher's
// delegation grants it, otherwise the app's own user.
func (m *Manager) recordUser(name string, rev Revision, mf *manifest.Manifest) (launch.User, error) {
	m.st.Lock()
	defer m.st.Unlock()
	return m.recordUserLocked(name, rev, mf)
}

// recordUserLocked is recordUser with the state locked.
func (m *Manager) recordUserLocked(name string, rev Revision, mf *manifest.Manifest) (launch.User, error) {
	u := launch.User{Root: true}
	if err := checkClassic(name, rev, mf); err != nil {
		return u, err
	}
	if mf.User == manifest.UserRoot {
		if !slices.Contains(rev.Grants, assert.GrantRoot) {
			return u, refused("cannot install %s: its %s asks to run as root (user: root), which the delegation of its publisher %s does not grant "+
				"(the root key holder can grant it with 'paddock key delegate --grant-root'; or leave user out to run as the app's own user)",
				name, manifest.Path, rev.Publisher)
		}
	} else {
		id, err := m.appIDLocked(name)
		if err != nil {
			return u, err
		}
		u = launch.User{UID: id, GID: id}
	}
	return u, launch.WriteUser(name, rev.Revision, u)
}

// ensureUsers gives every installed app its id, each kept revision's data
// to the user that revision runs as, the common data to the current
// revision's, and the data tree above them to root alone. A kept revision
// without a user record was installed before apps had users of their own,
// when no manifest could ask for root: it gets the app's own user, as does
// one whose record is damaged. The state must be locked.
func (m *Manager) ensureUsers() error {
	var errs []error
	for name, app := range m.apps() {
		if app.removing() {
			continue // its data waits for a remove
		}
		if err := m.ensureUser(name, app); err != nil {
			errs = append(errs, fmt.Errorf("cannot give %s its user: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) ensureUser(name string, app *App) error {
	id, err := m.appIDLocked(name)
	if err != nil {
		return err
	}
	if err := revisions.SecureData(name); err != nil {
		return err
	}
	for _, r := range app.Sequence {
		// A missing record, or one that does not read back, runs the
		// revision as the app's own user: never root by accident.
		u, err := launch.ReadUser(name, r.Revision)
		if err != nil {
			u = launch.User{UID: id, GID: id}
			if err := launch.WriteUser(name, r.Revision, u); err != nil {
				return err
			}
		}
		if err := revisions.GiveData(revisions.DataDir(name, r.Revision), ownerOf(u)); err != nil {
			return err
		}
		if r.Revision == app.Current {
			if err := revisions.GiveData(revisions.CommonDir(name), ownerOf(u)); err != nil {
				return err
			}
		}
	}
	return nil
}

// baseIDs returns the user and group ids that the base's passwd and group
// files name. A base without them names none.
func baseIDs() (map[int]bool, error) {
	used := map[int]bool{}
	for _, f := range []struct {
		path   string
		fields []int // the fields that hold ids
	}{{passwdFile, []int{2, 3}}, {groupFile, []int{2}}} {
		if err := readIDs(f.path, f.fields, used); err != nil {
			return nil, err
		}
	}
	return used, nil
}

// readIDs adds to used the numbers in the given colon-separated fields of
// the lines of path.
func readIDs(path string, fields []int, used map[int]bool) error {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the base's users: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		for _, i := range fields {
			if i < len(f) {
				if id, err := strconv.Atoi(f[i]); err == nil {
					used[id] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read the base's users in %s: %w", path, err)
	}
	return nil
}

// checkClassic refuses an app of classic confinement: without the classic
// grant of its publisher's delegation, and with it too, as the launcher
// cannot run it yet (policy.ErrClassic).
func checkClassic(name string, rev Revision, mf *manifest.Manifest) error {
	if mf.Confinement != manifest.Classic {
		return nil
	}
	if !slices.Contains(rev.Grants, assert.GrantClassic) {
		return refused("cannot install %s: its %s asks for classic confinement (no sandbox), which the delegation of its publisher %s does not grant "+
			"(the root key holder can grant it with 'paddock key delegate --grant-classic'; or build it with confinement: strict)",
			name, manifest.Path, rev.Publisher)
	}
	return refused("cannot install %s: %v", name, policy.ErrClassic)
}
