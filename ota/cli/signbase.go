package cli

import (
	"fmt"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// BaseSigning says how 'paddock image base' signs the slot image it made.
type BaseSigning struct {
	// Key names the signing key in the user's store.
	Key string
	// Revision is the base-revision's revision, 1 or more.
	Revision int
	// Delegation, when set, is a file of account-keys delegating Key
	// (from 'paddock key delegate'), copied into the output.
	Delegation string
}

// SignBase signs r (whose name, version, arch and image fields are set)
// with revision and key s and writes the assertions, delegations first,
// to out. It returns the fingerprint of the signing key.
func SignBase(r *assert.BaseRevision, s BaseSigning, out string) (string, error) {
	if s.Revision <= 0 {
		return "", fmt.Errorf("cannot sign base %s: revision %d, want 1 or more", r.Name, s.Revision)
	}
	store, err := keys.DefaultStore()
	if err != nil {
		return "", err
	}
	key, err := store.Private(s.Key)
	if err != nil {
		return "", err
	}
	var chain []*assert.Assertion
	if s.Delegation != "" {
		if chain, err = readDelegation(s.Delegation, key.Public(), s.Key, r.Name); err != nil {
			return "", err
		}
	}
	rev := *r
	rev.Revision, rev.Timestamp = s.Revision, assertNow()
	a, err := assert.SignBaseRevision(&rev, key)
	if err != nil {
		return "", fmt.Errorf("cannot sign base %s: %w", r.Name, err)
	}
	if err := keyWriteOutput(out, assert.EncodeBundle(append(chain, a))); err != nil {
		return "", err
	}
	return a.SignKey(), nil
}
