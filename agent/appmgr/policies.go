package appmgr

import (
	"errors"
	"fmt"

	"paddock.dev/paddock/agent/policy"
)

// ensurePolicies keeps the policy of every command of every kept revision
// as the catalog and the recorded users resolve it now: revisions that an
// older agent installed have none yet, and a user recorded again at this
// start changes them. Unchanged policies are not rewritten; profiles
// compiled again are loaded for the current revision. The state must be
// locked.
func (m *Manager) ensurePolicies() error {
	var errs []error
	for name, app := range m.apps() {
		if app.removing() {
			continue // its revisions wait for a remove
		}
		for _, r := range app.Sequence {
			mf, err := m.be.KeptManifest(name, r.Revision)
			compiled := false
			var conns []policy.Connection
			if err == nil {
				conns, err = m.connectionsOf(mf)
			}
			if err == nil {
				compiled, err = policy.Keep(mf, r.Revision, m.Arch, conns)
			}
			if err == nil && compiled && r.Revision == app.Current && !m.unlinked(name) {
				err = m.loadAppArmor(name, r.Revision)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cannot keep the policies of %s revision %d: %w", name, r.Revision, err))
			}
		}
	}
	return errors.Join(errs...)
}
