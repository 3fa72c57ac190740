// Package apitypes holds the wire types of the agent's REST API: what its
// answers carry, shared by the server (package api) and its clients
// (package client), which need nothing else of the agent.
package apitypes

import (
	"encoding/json"
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
