package trust

import (
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// The checks a delegation passes, in order; when no delegation passes them
// all, the one that got furthest explains the refusal.
const (
	stageTrusted = iota
	stageSigned
	stageRole
	stageName
	stageTime
	stageOK
)

// signed names a revision (of an app or a base) for findDelegation: its
// name, and the key that signed it as the key names itself.
type signed struct{ SignKey, AuthorityID, Name string }

// findDelegation returns the account-key in as that lets r's signing key
// publish r at time now.
func findDelegation(as []*assert.Assertion, trusted []*keys.PublicKey, r signed, now time.Time) (*assert.AccountKey, error) {
	best, bestStage := error(nil), -1
	for _, a := range as {
		if a.Type() != assert.AccountKeyType {
			continue
		}
		ak, err := assert.ParseAccountKey(a)
		if err != nil || ak.Fingerprint != r.SignKey {
			continue
		}
		stage, err := checkDelegation(a, ak, trusted, r.Name, now)
		if stage == stageOK {
			return ak, nil
		}
		if stage > bestStage {
			best, bestStage = err, stage
		}
	}
	if best == nil {
		best = refuse(ErrNotTrusted, "signature by key %s is not trusted (trust its root with 'paddock key trust', or add its delegation with 'paddock sign --delegation')",
			keyName(r.AuthorityID, r.SignKey))
	}
	return nil, best
}

// checkDelegation returns how far the account-key a gets in allowing its
// key to publish name at time now, and why it stops there.
func checkDelegation(a *assert.Assertion, ak *assert.AccountKey, trusted []*keys.PublicKey, name string, now time.Time) (int, error) {
	who := keyName(ak.Account, ak.Fingerprint)
	if stage, err := checkRootSigned(a, ak, trusted); err != nil {
		return stage, err
	}
	switch {
	case ak.Role != assert.RolePublisher:
		return stageRole, refuse(ErrWrongRole, "key %s is delegated as %s, not %s (delegate it with 'paddock key delegate --role publisher')",
			who, ak.Role, assert.RolePublisher)
	case !ak.Allows(name):
		return stageName, refuse(ErrNotDelegated, "key %s is not delegated to publish %q (it may publish: %s)",
			who, name, joinNames(ak.Names))
	}
	return checkDelegationWindow(ak, now, "paddock key delegate --until")
}

// checkRootSigned checks that a trusted root key signed the account-key a.
func checkRootSigned(a *assert.Assertion, ak *assert.AccountKey, trusted []*keys.PublicKey) (int, error) {
	who := keyName(ak.Account, ak.Fingerprint)
	var root *keys.PublicKey
	for _, k := range trusted {
		if k.Fingerprint() == ak.SignKey {
			root = k
		}
	}
	switch {
	case root == nil:
		return stageTrusted, refuse(ErrNotTrusted, "key %s is delegated by key %s, which is not trusted (trust it with 'paddock key trust')",
			who, keyName(a.AuthorityID(), ak.SignKey))
	case a.Verify(root) != nil:
		return stageSigned, refuse(ErrBadSignature, "delegation of key %s has an invalid signature by root key %s (delegate again with 'paddock key delegate')",
			who, keyName(root.Name(), ak.SignKey))
	}
	return stageOK, nil
}

// checkDelegationWindow checks that now is within the delegation's validity;
// renew is the command that renews it.
func checkDelegationWindow(ak *assert.AccountKey, now time.Time, renew string) (int, error) {
	switch {
	case now.Before(ak.Since):
		return stageTime, refuse(ErrNotYetValid, "delegation of key %s is not valid before %s (check the device clock)",
			ak.Account, formatDate(ak.Since))
	case !ak.Until.IsZero() && !now.Before(ak.Until):
		return stageTime, refuse(ErrExpired, "delegation of key %s expired on %s (renew it with '%s')",
			ak.Account, formatDate(ak.Until), renew)
	}
	return stageOK, nil
}
