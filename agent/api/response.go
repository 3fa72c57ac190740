// Package api serves the agent's REST API on a unix socket. Reads are open
// to every local user; changes need root, checked by the peer credentials
// of the connection.
package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"paddock.dev/paddock/agent/appmgr"
)

// Response is the envelope of every answer, in the manner of snapd's API:
// Type is "sync" with a Result, "async" with the Change id, or "error" with
// an ErrorResult.
type Response struct {
	Type       string          `json:"type"`
	StatusCode int             `json:"status-code"`
	Result     json.RawMessage `json:"result,omitempty"`
	Change     string          `json:"change,omitempty"`
}

// ErrorResult is the result of an error response.
type ErrorResult struct {
	Message string `json:"message"`
	// Kind is a stable word for scripts: not-found, conflict, refused, forbidden, bad-request, internal.
	Kind string `json:"kind"`
}

func writeResponse(w http.ResponseWriter, r Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.StatusCode)
	json.NewEncoder(w).Encode(r)
}

func syncResponse(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		errorResponse(w, http.StatusInternalServerError, "internal", err)
		return
	}
	writeResponse(w, Response{Type: "sync", StatusCode: http.StatusOK, Result: b})
}

func asyncResponse(w http.ResponseWriter, change string) {
	writeResponse(w, Response{Type: "async", StatusCode: http.StatusAccepted, Change: change})
}

func errorResponse(w http.ResponseWriter, code int, kind string, err error) {
	b, _ := json.Marshal(ErrorResult{Message: err.Error(), Kind: kind})
	writeResponse(w, Response{Type: "error", StatusCode: code, Result: b})
}

// managerError answers with the status that fits an error of the app manager.
func managerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, appmgr.ErrNotInstalled):
		errorResponse(w, http.StatusNotFound, "not-found", err)
	case errors.Is(err, appmgr.ErrInProgress):
		errorResponse(w, http.StatusConflict, "conflict", err)
	case errors.Is(err, appmgr.ErrRefused):
		errorResponse(w, http.StatusBadRequest, "refused", err)
	default:
		errorResponse(w, http.StatusInternalServerError, "internal", err)
	}
}
