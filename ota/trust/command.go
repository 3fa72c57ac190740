package trust

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// Sentinel errors of CheckCommand, besides those of CheckRevision.
var (
	// ErrNotForMe: the command targets another device, or a group the
	// device is not in.
	ErrNotForMe = errors.New("command is not for this device")
	// ErrWrongRole: the signer's key is delegated, but not for this role
	// (a publisher key signed a command). It is an ErrNotDelegated.
	ErrWrongRole = fmt.Errorf("%w for this role", ErrNotDelegated)
)

// ClockSkew is how far a device's clock may lag the operator's: a command
// is accepted up to ClockSkew before its not-before.
const ClockSkew = 5 * time.Minute

// Command is a command that passed CheckCommand.
type Command struct {
	ID string
	// Target is "device/ID" or "group/NAME".
	Target    string
	Action    string
	NotBefore time.Time
	Expiry    time.Time
	// Body is the action's arguments, a JSON object.
	Body []byte
	// SignKey is the fingerprint of the key that signed the command.
	SignKey string
	// Operator is the account of the signing key: the delegation's
	// account, or the root key's name when a root signed directly.
	Operator string
}

// CheckCommand checks the command in bundle (an MQTT command message)
// against the trusted root keys at time now, for the device called device
// that belongs to groups. The command's signing key must be a trusted root,
// or be delegated by an account-key in the bundle, signed by a trusted
// root, for the operator role, at time now, with a names glob that matches
// the command's target. The target must be device/DEVICE or group/G for G
// in groups, and now must be within the command's [not-before, expiry],
// with ClockSkew of tolerance before not-before.
//
// CheckCommand does not check that the command was never applied before.
func CheckCommand(bundle []byte, trusted []*keys.PublicKey, now time.Time, device string, groups []string) (*Command, error) {
	as, a, err := findCommand(bundle)
	if err != nil {
		return nil, err
	}
	c, err := assert.ParseCommand(a)
	if err != nil {
		return nil, err
	}
	operator, delegations, err := authenticateCommand(as, a, c, trusted, now)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(c, device, groups); err != nil {
		return nil, err
	}
	if delegations != nil && !slices.ContainsFunc(delegations, func(ak *assert.AccountKey) bool { return ak.Allows(c.Target) }) {
		ak := delegations[0]
		return nil, refuse(ErrNotDelegated, "key %s is not delegated to command %s (it may command: %s; delegate it with 'paddock key delegate --role operator --names')",
			keyName(ak.Account, ak.Fingerprint), c.Target, joinNames(ak.Names))
	}
	if err := checkWindow(c, now); err != nil {
		return nil, err
	}
	return &Command{
		ID: c.ID, Target: c.Target, Action: c.Action, NotBefore: c.NotBefore, Expiry: c.Expiry, Body: c.Body,
		SignKey: c.SignKey, Operator: operator,
	}, nil
}

// findCommand decodes bundle and returns its assertions and the one
// command among them.
func findCommand(bundle []byte) ([]*assert.Assertion, *assert.Assertion, error) {
	as, err := assert.DecodeBundle(bundle)
	if errors.Is(err, assert.ErrUnsigned) {
		return nil, nil, refuse(ErrUnsigned, "command is not signed (send it with 'paddock fleet send')")
	}
	if err != nil {
		return nil, nil, err
	}
	var cmds []*assert.Assertion
	for _, a := range as {
		if a.Type() == assert.CommandType {
			cmds = append(cmds, a)
		}
	}
	switch len(cmds) {
	case 0:
		return nil, nil, refuse(ErrUnsigned, "no signed command found (send it with 'paddock fleet send')")
	case 1:
		return as, cmds[0], nil
	}
	return nil, nil, fmt.Errorf("cannot check command: got %d commands in one message, want one (send each with 'paddock fleet send')", len(cmds))
}

// authenticateCommand checks the signature chain of command a and returns
// the operator's name and the delegations that let its key command at time
// now, or no delegations when a trusted root signed a.
func authenticateCommand(as []*assert.Assertion, a *assert.Assertion, c *assert.Command, trusted []*keys.PublicKey, now time.Time) (string, []*assert.AccountKey, error) {
	for _, root := range trusted {
		if root.Fingerprint() != c.SignKey {
			continue
		}
		if err := a.Verify(root); err != nil {
			return "", nil, refuse(ErrBadSignature, "signature of command %s by root key %s is invalid (send it again with 'paddock fleet send')",
				c.ID, keyName(root.Name(), c.SignKey))
		}
		return keyName(root.Name(), ""), nil, nil
	}
	aks, err := findOperatorDelegations(as, trusted, c, now)
	if err != nil {
		return "", nil, err
	}
	// Every delegation found is for the same key: verify once.
	if err := a.Verify(aks[0].Key); err != nil {
		return "", nil, refuse(ErrBadSignature, "signature of command %s by key %s is invalid (send it again with 'paddock fleet send')",
			c.ID, keyName(aks[0].Account, c.SignKey))
	}
	return aks[0].Account, aks, nil
}

// checkTarget checks that c is for device or one of its groups.
func checkTarget(c *assert.Command, device string, groups []string) error {
	kind, name := c.SplitTarget()
	switch {
	case kind == assert.TargetDevice && name == device:
		return nil
	case kind == assert.TargetGroup && slices.Contains(groups, name):
		return nil
	case kind == assert.TargetDevice:
		return refuse(ErrNotForMe, "command %s is for %s, not this device (%s)", c.ID, c.Target, device)
	case len(groups) == 0:
		return refuse(ErrNotForMe, "command %s is for %s, and this device (%s) is in no group", c.ID, c.Target, device)
	}
	return refuse(ErrNotForMe, "command %s is for %s, and this device (%s) is only in %s", c.ID, c.Target, device, joinNames(groups))
}

// checkWindow checks that now is within c's [not-before, expiry].
func checkWindow(c *assert.Command, now time.Time) error {
	switch {
	case now.Add(ClockSkew).Before(c.NotBefore):
		return refuse(ErrNotYetValid, "command %s is not valid before %s, and it is %s (check the device clock, or send it again with an earlier not-before)",
			c.ID, assert.FormatTime(c.NotBefore), assert.FormatTime(now))
	case now.After(c.Expiry):
		return refuse(ErrExpired, "command %s expired at %s, and it is %s (send it again with a later expiry, or check the device clock)",
			c.ID, assert.FormatTime(c.Expiry), assert.FormatTime(now))
	}
	return nil
}
