// Package mqtt is the fleet link: the device side keeps one MQTT session to
// the broker, receives signed commands, reports events and state; the
// operator side (package mqtt/fleet) sends commands and runs rollouts. The
// broker is not trusted: every command is a signed assertion that the
// device checks (signature, target, time window, never applied before).
//
// The package never imports the agent: it defines the Device interface
// that the agent implements.
//
// # Topics
//
// Everything lives under paddock/v1/ (QoS 1):
//
//	devices/ID/cmd     operator → device   a command bundle (see below)
//	groups/GROUP/cmd   operator → devices  the same, for every device of the group
//	devices/ID/events  device → operator   one Event (JSON) per message
//	devices/ID/state   device → operator   the State (JSON), retained, republished on change
//	devices/ID/online  device → operator   Presence (JSON), retained; the will says offline
//
// # Commands
//
// A command message is an assertion bundle, as ota/assert encodes it: the
// account-key assertion by which a trusted root delegates the operator key
// (role operator; its names are globs over the targets "device/ID" and
// "group/NAME" it may command), then the command assertion, signed by that
// operator key. The command's headers:
//
//	type: command
//	authority-id, sign-key   the operator account and key
//	id                       unique; [A-Za-z0-9._-]{1,64}
//	target                   device/ID or group/NAME
//	action                   install refresh remove revert connect disconnect start stop
//	                         restart config-set base-update reboot logs ping
//	not-before, expiry       RFC 3339 UTC
//	body-length              the body is the action's arguments, as JSON (Args)
//
// # Events
//
// A device answers each command with events: "accepted" (or "refused" with
// the reason when the checks fail), any number of "progress" (a step, a
// percentage), then "done" (with a result) or "failed" (with the reason).
// A command delivered again after it was applied is answered with its
// recorded final event, marked "replayed": it is never applied twice.
//
// Commands for different apps run at the same time, those for one app in
// arrival order (a later one reports a "queued" progress step), pings at
// once; base-update and reboot wait for the commands before them and hold
// back those after them. A slow artifact download therefore delays only
// its own app.
// Events produced while the broker is unreachable wait in a bounded queue
// on disk and go out in order on reconnect. A full queue drops progress
// first, then refusals (a flood of garbage never pushes out the answers
// to real commands), and counts every answer it drops: once it drains, a
// "dropped" event says how many since when, and the state's metrics keep
// the totals.
package mqtt
