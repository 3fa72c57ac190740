package assert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"paddock.dev/paddock/ota/keys"
)

// CommandType is the type of a command assertion: an operator's order to a
// device or a group of devices, sent over MQTT.
const CommandType = "command"

// CommandActions lists the actions a command may carry. It mirrors the
// actions of package mqtt, which this package does not import.
var CommandActions = []string{
	"install", "refresh", "remove", "revert", "connect", "disconnect",
	"start", "stop", "restart", "config-set", "base-update", "reboot", "logs", "ping",
}

// Target kinds: a command is for "device/ID" or "group/NAME".
const (
	TargetDevice = "device"
	TargetGroup  = "group"
)

var (
	validCommandID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`) })
	validTarget    = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(device|group)/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	})
)

// Command is a command assertion. Body holds the action's arguments as a
// JSON object ("{}" when there are none).
type Command struct {
	// SignKey is the fingerprint of the operator's key.
	SignKey string
	// AuthorityID is the name the operator's key gives itself.
	AuthorityID string
	// ID is unique among the commands of a fleet; a device applies an ID once.
	ID string
	// Target is "device/ID" or "group/NAME".
	Target string
	// Action is one of CommandActions.
	Action string
	// NotBefore and Expiry bound when a device may apply the command.
	NotBefore, Expiry time.Time
	Body              []byte
}

// SplitTarget returns the kind (TargetDevice or TargetGroup) and the name
// of a command's target.
func (c *Command) SplitTarget() (kind, name string) {
	kind, name, _ = strings.Cut(c.Target, "/")
	return kind, name
}

// ParseCommand returns the typed content of a command assertion, checking
// every value.
func ParseCommand(a *Assertion) (*Command, error) {
	if a.Type() != CommandType {
		return nil, fmt.Errorf("cannot parse %s as %s", a.Type(), CommandType)
	}
	c := &Command{
		SignKey:     a.SignKey(),
		AuthorityID: a.AuthorityID(),
		ID:          a.Header("id"),
		Target:      a.Header("target"),
		Action:      a.Header("action"),
		Body:        a.Body(),
	}
	ch := &checker{a: a}
	ch.check(!validCommandID().MatchString(c.ID), "id %q (want 1 to 64 of A-Z a-z 0-9 . _ -)", c.ID)
	ch.check(!validTarget().MatchString(c.Target), "target %q (want device/ID or group/NAME)", c.Target)
	ch.check(!slices.Contains(CommandActions, c.Action), "action %q (want one of %s)", c.Action, strings.Join(CommandActions, ", "))
	c.NotBefore = ch.time("not-before")
	c.Expiry = ch.time("expiry")
	ch.check(ch.err == nil && !c.Expiry.After(c.NotBefore), "expiry %s is not after not-before %s", a.Header("expiry"), a.Header("not-before"))
	ch.check(!isJSONObject(c.Body), "body is not a JSON object (want the action's arguments, or {})")
	if ch.err != nil {
		return nil, ch.err
	}
	return c, nil
}

// isJSONObject reports whether b is one JSON object, starting at its first byte.
func isJSONObject(b []byte) bool {
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// SignCommand makes a command assertion for c, signed by key. An empty
// c.Body is sent as "{}". c.SignKey and c.AuthorityID are ignored.
func SignCommand(c *Command, key *keys.PrivateKey) (*Assertion, error) {
	body := c.Body
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	hs := []Header{
		{"id", c.ID},
		{"target", c.Target},
		{"action", c.Action},
		{"not-before", FormatTime(c.NotBefore)},
		{"expiry", FormatTime(c.Expiry)},
	}
	return Sign(CommandType, hs, body, key)
}
