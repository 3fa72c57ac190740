package mqtt

import (
	"encoding/json"
	"time"
)

// TopicPrefix is the root of every paddock topic.
const TopicPrefix = "paddock/v1/"

// Topics of one device.
func CmdTopic(device string) string    { return TopicPrefix + "devices/" + device + "/cmd" }
func GroupTopic(group string) string   { return TopicPrefix + "groups/" + group + "/cmd" }
func EventsTopic(device string) string { return TopicPrefix + "devices/" + device + "/events" }
func StateTopic(device string) string  { return TopicPrefix + "devices/" + device + "/state" }
func OnlineTopic(device string) string { return TopicPrefix + "devices/" + device + "/online" }

// Actions a command may carry.
const (
	ActionInstall    = "install"
	ActionRefresh    = "refresh"
	ActionRemove     = "remove"
	ActionRevert     = "revert"
	ActionConnect    = "connect"
	ActionDisconnect = "disconnect"
	ActionStart      = "start"
	ActionStop       = "stop"
	ActionRestart    = "restart"
	ActionConfigSet  = "config-set"
	ActionBaseUpdate = "base-update"
	ActionReboot     = "reboot"
	ActionLogs       = "logs"
	ActionPing       = "ping"
)

// Actions lists every action, for validation and help.
var Actions = []string{ActionInstall, ActionRefresh, ActionRemove, ActionRevert, ActionConnect, ActionDisconnect,
	ActionStart, ActionStop, ActionRestart, ActionConfigSet, ActionBaseUpdate, ActionReboot, ActionLogs, ActionPing}

// Args are the arguments of a command, the JSON body of its assertion;
// each action reads the fields it needs.
type Args struct {
	// Name is the app (remove, revert, start, stop, restart, logs) or
	// the plug (connect, disconnect: "app:plug").
	Name string `json:"name,omitempty"`
	// Slot is the slot to connect the plug to (connect); empty for the
	// only slot that fits.
	Slot string `json:"slot,omitempty"`
	// Assertions is the app-revision bundle of an install or refresh (or
	// the base-revision of a base update), as 'paddock sign' writes it.
	Assertions string `json:"assertions,omitempty"`
	// URLs are where the artifact can be downloaded, tried in order.
	URLs []string `json:"urls,omitempty"`
	// Lines is how many log lines to send back (logs).
	Lines int `json:"lines,omitempty"`
	// Key and Value are a configuration setting (config-set).
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	// Download bounds the artifact download of install, refresh and
	// base-update; what it leaves unset takes the device's settings.
	Download *DownloadLimits `json:"download,omitempty"`
}

// DownloadLimits bound an artifact download: a mirror slower than MinRate
// over RateWindow is given up, and the whole download ends at Deadline.
type DownloadLimits struct {
	// MinRate is in bytes per second; negative means no minimum.
	MinRate int64 `json:"min-rate,omitempty"`
	// RateWindow and Deadline are durations such as "30s" or "2h"; a
	// negative Deadline means none.
	RateWindow string `json:"rate-window,omitempty"`
	Deadline   string `json:"deadline,omitempty"`
}

// Event types.
const (
	EventAccepted = "accepted"
	EventRefused  = "refused"
	EventProgress = "progress"
	EventDone     = "done"
	EventFailed   = "failed"
	// EventDropped counts the answers the device could not keep while the
	// broker was out of reach (Count, and since when in Message); it
	// concerns no command.
	EventDropped = "dropped"
)

// RevertedPrefix begins the message of a failed install or refresh that
// the device undid by itself (its new revision was not healthy within its
// health window): "reverted: health check failed: <reason>". The previous
// revision runs again.
const RevertedPrefix = "reverted: "

// Event is one message on devices/ID/events.
type Event struct {
	// Command is the id of the command the event is about.
	Command string `json:"command"`
	Device  string `json:"device"`
	// Seq numbers the device's events, so that an operator can order them.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Step and Percent describe progress.
	Step    string `json:"step,omitempty"`
	Percent int    `json:"percent,omitempty"`
	// Message is the reason of a refusal or failure, or a note.
	Message string `json:"message,omitempty"`
	// Result is what a done command answers (an app's revision, log lines, ...).
	Result json.RawMessage `json:"result,omitempty"`
	// Replayed marks the recorded answer to a command delivered again.
	Replayed bool `json:"replayed,omitempty"`
	// Count is how many events a "dropped" event stands for.
	Count uint64 `json:"count,omitempty"`
}

// Final reports whether the event ends its command.
func (e Event) Final() bool {
	return e.Type == EventDone || e.Type == EventFailed || e.Type == EventRefused
}

// Presence is the retained message on devices/ID/online.
type Presence struct {
	Online bool      `json:"online"`
	Time   time.Time `json:"time"`
}

// AppState is what the state reports of an installed app.
type AppState struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Revision int    `json:"revision"`
	// Revisions are the kept revisions, the current one included.
	Revisions []int `json:"revisions,omitempty"`
	// Health is the app's health (okay, waiting, error or unknown) and
	// HealthMessage why, when something judges it.
	Health        string `json:"health,omitempty"`
	HealthMessage string `json:"health-message,omitempty"`
}

// ConnectionState is what the state reports of one plug of an app.
type ConnectionState struct {
	Interface string `json:"interface"`
	// Plug is APP:PLUG.
	Plug string `json:"plug"`
	// Slot is empty when the plug is not connected.
	Slot string `json:"slot,omitempty"`
	// By is auto, gadget or operator.
	By string `json:"by,omitempty"`
	// Hardware marks a plug that only the gadget or an operator connects.
	Hardware bool `json:"hardware,omitempty"`
}

// Metrics are light figures reported with the state.
type Metrics struct {
	Uptime       float64 `json:"uptime"`        // seconds
	MemAvailable uint64  `json:"mem-available"` // bytes
	DiskFree     uint64  `json:"disk-free"`     // bytes, of the data partition
	Load1        float64 `json:"load1"`
	// RefusalsDropped and AnswersDropped count the refusals and the done
	// or failed answers that the device dropped, its event queue full,
	// since the agent started.
	RefusalsDropped uint64 `json:"refusals-dropped,omitempty"`
	AnswersDropped  uint64 `json:"answers-dropped,omitempty"`
}

// State is the retained message on devices/ID/state.
type State struct {
	Device       string     `json:"device"`
	Groups       []string   `json:"groups,omitempty"`
	AgentVersion string     `json:"agent-version"`
	Time         time.Time  `json:"time"`
	Apps         []AppState `json:"apps"`
	// Health is "ok" or "degraded" (with Problems).
	Health   string   `json:"health"`
	Problems []string `json:"problems,omitempty"`
	// Connections are the plugs of the installed apps and the slots they
	// are connected to; a hardware plug without a slot waits for an operator.
	Connections []ConnectionState `json:"connections,omitempty"`
	// BaseSlot is the active base slot (a or b), when the device has A/B bases.
	BaseSlot string `json:"base-slot,omitempty"`
	// Base is the state of the A/B base slots, when the device has them.
	Base    *BaseState `json:"base,omitempty"`
	Metrics Metrics    `json:"metrics"`
}

// BaseState is what the state reports of a device's base slots.
type BaseState struct {
	// Running is the slot running; Revision and Version its base's.
	Running  string `json:"running"`
	Revision int    `json:"revision,omitempty"`
	Version  string `json:"version,omitempty"`
	// Verified says the running base is checked by dm-verity.
	Verified bool `json:"verified"`
	// Slots maps each slot to its state: good, try, trying, writing,
	// bad (with why, "bad: REASON") or other.
	Slots map[string]string `json:"slots"`
	// LastSlot, LastResult and LastReason are the last try of a base:
	// its slot, trying, committed or failed, and why it failed.
	LastSlot   string `json:"last-slot,omitempty"`
	LastResult string `json:"last-result,omitempty"`
	LastReason string `json:"last-reason,omitempty"`
	// LastAdvice says what the operator should do about it.
	LastAdvice string `json:"last-advice,omitempty"`
}
