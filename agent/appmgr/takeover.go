package appmgr

import (
	"errors"
	"fmt"
	"slices"

	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// A takeover (a delegation with --takeover, or a revision signed by a root
// key) hands an app to another publisher key for good: the app records the
// key that owns it and the keys it superseded. Revisions of a superseded
// key are refused, new ones at install and kept ones at revert, unless the
// root delegates a takeover back.

// owner returns the fingerprint of the key that publishes the app: the
// signer of its first revision, or of the revision that last took it over.
// States written before it was recorded fall back to the current
// revision's signer.
func (a *App) owner() string {
	if a.OwnerKey != "" {
		return a.OwnerKey
	}
	if r := a.CurrentRevision(); r != nil {
		return r.SignKey
	}
	return ""
}

// publishedBy records that key publishes the app from now on; the key it
// replaces is superseded for good.
func (a *App) publishedBy(key string) {
	if old := a.owner(); old != "" && old != key && !slices.Contains(a.Superseded, old) {
		a.Superseded = append(a.Superseded, old)
	}
	a.Superseded = slices.DeleteFunc(a.Superseded, func(k string) bool { return k == key })
	a.OwnerKey = key
}

// checkOwner checks a revision of the app signed by signer against the
// key that owns it; it returns the checked revision.
func checkOwner(bundle []byte, trusted []*keys.PublicKey, a *App, r *trust.Revision) (*trust.Revision, error) {
	owner := a.owner()
	if owner == "" || owner == r.SignKey {
		return r, nil
	}
	checked, err := trust.CheckRevision(bundle, trusted, timeNow(), owner)
	if errors.Is(err, trust.ErrKeyChanged) && slices.Contains(a.Superseded, r.SignKey) {
		return nil, refusedError{supersededError(fmt.Sprintf("cannot install: key %s no longer publishes %s: key %s took it over, and a takeover is permanent (only the root key holder can hand it back, with 'paddock key delegate --takeover')",
			keys.Short(r.SignKey), a.Name, keys.Short(owner)))}
	}
	if err != nil {
		return nil, refused("cannot install: %w", err)
	}
	return checked, nil
}

// checkRevert refuses to go back to a revision signed by a key that the
// app's owner took it over from.
func checkRevert(a *App, prev *Revision) error {
	if owner := a.owner(); prev.SignKey != owner {
		return refused("cannot revert %s to revision %d: it was published by key %s, which key %s took the app over from, and a takeover is permanent",
			a.Name, prev.Revision, keys.Short(prev.SignKey), keys.Short(owner))
	}
	return nil
}

// supersededError is trust.ErrKeyChanged for a key that lost a takeover.
type supersededError string

func (e supersededError) Error() string { return string(e) }
func (e supersededError) Unwrap() error { return trust.ErrKeyChanged }
