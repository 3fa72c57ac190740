// Package apitypes holds the wire types of the agent's REST API: what its
// answers carry, shared by the server (package api) and its clients
// (package client), which need nothing else of the agent.
package apitypes

import (
	"encoding/json"
	"net/http"
	"time"
)

// Response is the envelope of every answer, in the manner of snapd's API:
// Type is "sync" with a Result, "async" with the Change id, or "error" with
// an ErrorResult.
type Response struct {
	Type       string          `json:"type"`
	StatusCode int             `json:"status-code"`
	Result     json.RawMessage `json:"result,omitempty"`
	Change     string          `json:"change,omitempty"`
	// Degraded, on any answer, says that the agent cannot keep its state
	// safe (it cannot save it, or the disk is full), and why.
	Degraded *Degraded `json:"degraded,omitempty"`
}

// ErrorResult is the result of an error response.
type ErrorResult struct {
	Message string `json:"message"`
	// Kind is a stable word for scripts: not-found, conflict, refused, forbidden, bad-request,
	// busy (too many connections), no-space (the disk is too full for it), internal.
	Kind string `json:"kind"`
}

// ErrorResponse returns the error Response with the status code, the kind
// (an ErrorResult's) and the message.
func ErrorResponse(code int, kind, message string) Response {
	b, _ := json.Marshal(ErrorResult{Message: message, Kind: kind})
	return Response{Type: "error", StatusCode: code, Result: b}
}

// SyncResponse returns the sync Response whose result is v, or an
// internal error Response when v cannot be encoded.
func SyncResponse(v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		return ErrorResponse(http.StatusInternalServerError, "internal", err.Error())
	}
	return Response{Type: "sync", StatusCode: http.StatusOK, Result: b}
}

// Write writes r as the answer of w.
func (r Response) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.StatusCode)
	json.NewEncoder(w).Encode(r)
}

// Busy returns the body of the answer to a connection over the limits of
// a socket: a 503 of kind busy, saying why.
func Busy(why string) []byte {
	b, _ := json.Marshal(ErrorResponse(http.StatusServiceUnavailable, "busy", why))
	return b
}

// Degraded says why the agent cannot keep its state safe, and since when.
type Degraded struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// ChangeInfo is what the API reports of a change.
type ChangeInfo struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	// App is the app the change works on, from the change's data; empty
	// for a change of no app.
	App       string     `json:"app,omitempty"`
	Status    string     `json:"status"`
	Ready     bool       `json:"ready"`
	Err       string     `json:"err,omitempty"`
	SpawnTime time.Time  `json:"spawn-time"`
	ReadyTime *time.Time `json:"ready-time,omitempty"`
	Tasks     []TaskInfo `json:"tasks"`
}

// TaskInfo is what the API reports of a task.
type TaskInfo struct {
	ID      string   `json:"id"`
	Kind    string   `json:"kind"`
	Summary string   `json:"summary"`
	Status  string   `json:"status"`
	Log     []string `json:"log,omitempty"`
}

// AppInfo is what the API reports of an app: its state and the current
// revision's details.
type AppInfo struct {
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Revision  int        `json:"revision"`
	Type      string     `json:"type"`
	Arch      string     `json:"arch"`
	Publisher string     `json:"publisher"`
	Revisions []Revision `json:"revisions"`
	// Health is the app's health, when something judges it (a probe, the
	// check-health hook, the app itself, a crash loop).
	Health *AppHealth `json:"health,omitempty"`
}

// AppHealth is an app's health: Status okay, waiting, error or unknown,
// why, from which source (probe, hook, ctl or crash-loop), and since when.
type AppHealth struct {
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"`
	Source  string    `json:"source,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// Revision is one revision of an app kept on the device.
type Revision struct {
	Revision  int       `json:"revision"`
	Version   string    `json:"version"`
	Type      string    `json:"type"`
	Arch      string    `json:"arch"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Publisher string    `json:"publisher"`
	SignKey   string    `json:"sign-key"`
	Installed time.Time `json:"installed"`
	// Grants are what the publisher's delegation grants (assert.GrantRoot).
	Grants []string `json:"grants,omitempty"`
}

// ServiceInfo is what the API reports of one service: a command of an
// app's current revision declared with daemon:.
type ServiceInfo struct {
	App     string `json:"app"`
	Service string `json:"service"`
	// Revision is the app revision the service runs (or last ran) from.
	Revision int `json:"revision"`
	// Daemon is simple, oneshot or notify; Restart is on-failure, always or never.
	Daemon  string `json:"daemon"`
	Restart string `json:"restart"`
	// State is one of the Service* states below.
	State string `json:"state"`
	// Enabled is false once 'paddock stop' stopped the service: it stays
	// stopped, across agent restarts and boots, until 'paddock start'.
	Enabled bool `json:"enabled"`
	// PID is the service's main process (0 when none runs), as the host
	// sees it; Since is when it entered State.
	PID   int       `json:"pid,omitempty"`
	Since time.Time `json:"since"`
	// Restarts counts the restarts after a failure since the service was
	// last started by hand (or the agent started it at boot).
	Restarts int `json:"restarts"`
	// LastExit is how the service's last run ended, if it ended.
	LastExit *ServiceExit `json:"last-exit,omitempty"`
	// CrashLoop is true while the service keeps failing soon after each
	// start: the supervisor waits longer and longer between restarts.
	CrashLoop bool `json:"crash-loop"`
	// NextRestart is when a failed service will be started again.
	NextRestart time.Time `json:"next-restart,omitzero"`
	// Message says what went wrong, when something did.
	Message string `json:"message,omitempty"`
	// AppHealth is the health of the service's app, when something
	// judges it (agent/health).
	AppHealth *AppHealth `json:"app-health,omitempty"`
}

// States of a service (ServiceInfo.State).
const (
	ServiceStarting = "starting" // launched; a notify service is not ready yet
	ServiceRunning  = "running"  // running (and ready)
	ServiceStopping = "stopping" // told to stop, not ended yet
	ServiceStopped  = "stopped"  // not running, and not to be restarted
	ServiceExited   = "exited"   // ended with status 0 and not restarted (a oneshot that did its work)
	ServiceFailed   = "failed"   // ended badly and not restarted (restart: never, or it cannot launch)
	ServiceWaiting  = "waiting"  // ended badly; restarts at NextRestart
)

// ServiceExit is how a run of a service ended.
type ServiceExit struct {
	// Code is the exit status, or 128+N when signal N ended it; -1 when
	// unknown.
	Code int       `json:"code"`
	Time time.Time `json:"time"`
}

// LogLine is one line of a service's log.
type LogLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"` // APP.SVC
	Text    string    `json:"text"`
}

// ConnectionInfo is what the API reports of one plug of an installed app:
// the slot it is connected to, or none.
type ConnectionInfo struct {
	Interface string `json:"interface"`
	// Plug is APP:PLUG.
	Plug string `json:"plug"`
	// Slot is the gadget's slot (serial1) or the system's slot of the
	// interface (:network); empty when the plug is not connected.
	Slot string `json:"slot,omitempty"`
	// By says who connected it: auto, gadget or operator.
	By string `json:"by,omitempty"`
	// Hardware marks a plug of a hardware interface, which connects only
	// through the gadget's connections or an operator.
	Hardware bool `json:"hardware,omitempty"`
	// AutoConnect says that a plug of the interface connects by itself.
	AutoConnect bool `json:"auto-connect,omitempty"`
	// New marks a plug that the current revision declares and the
	// previous kept one did not: what a refresh added.
	New   bool     `json:"new,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// InterfaceInfo is what the API reports of an interface of the catalog.
type InterfaceInfo struct {
	Name        string `json:"name"`
	Summary     string `json:"summary"`
	AutoConnect bool   `json:"auto-connect"`
	// Hardware interfaces get their devices from the gadget's slots.
	Hardware bool `json:"hardware"`
	// Grants says what a connected plug adds to the sandbox.
	Grants []string `json:"grants,omitempty"`
	// Slots are the gadget's slots of the interface.
	Slots []string `json:"slots,omitempty"`
}

// ConnectRequest is the body of POST /v1/connections.
type ConnectRequest struct {
	// Action is connect or disconnect.
	Action string `json:"action"`
	// Plug is APP:PLUG.
	Plug string `json:"plug"`
	// Slot is the slot to connect to; empty for the only one that fits.
	Slot string `json:"slot,omitempty"`
}
