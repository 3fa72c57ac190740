package trust

import (
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// findOperatorDelegations returns the account-keys in as that delegate c's
// signing key, by a trusted root, as an operator, at time now. Whether
// their names cover c's target is left to the caller, which first tells a
// command for another device apart. When none passes, the one that got
// furthest explains the refusal.
func findOperatorDelegations(as []*assert.Assertion, trusted []*keys.PublicKey, c *assert.Command, now time.Time) ([]*assert.AccountKey, error) {
	var found []*assert.AccountKey
	best, bestStage := error(nil), -1
	for _, a := range as {
		if a.Type() != assert.AccountKeyType {
			continue
		}
		ak, err := assert.ParseAccountKey(a)
		if err != nil || ak.Fingerprint != c.SignKey {
			continue
		}
		stage, err := checkOperatorDelegation(a, ak, trusted, now)
		if stage == stageOK {
			found = append(found, ak)
		} else if stage > bestStage {
			best, bestStage = err, stage
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	if best == nil {
		best = refuse(ErrNotTrusted, "signature of command %s by key %s is not trusted (trust its root with 'paddock key trust', or send the operator's delegation with the command)",
			c.ID, keyName(c.AuthorityID, c.SignKey))
	}
	return nil, best
}

// checkOperatorDelegation returns how far the account-key a gets in
// letting its key send commands at time now, and why it stops there.
func checkOperatorDelegation(a *assert.Assertion, ak *assert.AccountKey, trusted []*keys.PublicKey, now time.Time) (int, error) {
	if stage, err := checkRootSigned(a, ak, trusted); err != nil {
		return stage, err
	}
	if ak.Role != assert.RoleOperator {
		return stageRole, refuse(ErrWrongRole, "key %s is delegated as %s, not %s, and cannot send commands (delegate it with 'paddock key delegate --role operator')",
			keyName(ak.Account, ak.Fingerprint), ak.Role, assert.RoleOperator)
	}
	return checkDelegationWindow(ak, now, "paddock key delegate --role operator --until")
}
