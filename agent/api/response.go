// Package api serves the agent's REST API on a unix socket. Reads are open
// to every local user; changes need root, checked by the peer credentials
// of the connection.
package api

import (
	"errors"
	"net/http"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/ota/revisions"
)

// writeResponse writes r, saying whether the agent is degraded.
func writeResponse(w http.ResponseWriter, r apitypes.Response) {
	if hw, ok := w.(*healthWriter); ok {
		r.Degraded = hw.degraded
	}
	r.Write(w)
}

func syncResponse(w http.ResponseWriter, v any) { writeResponse(w, apitypes.SyncResponse(v)) }

func asyncResponse(w http.ResponseWriter, change string) {
	writeResponse(w, apitypes.Response{Type: "async", StatusCode: http.StatusAccepted, Change: change})
}

func errorResponse(w http.ResponseWriter, code int, kind string, err error) {
	writeResponse(w, apitypes.ErrorResponse(code, kind, err.Error()))
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
	case errors.Is(err, revisions.ErrNoSpace):
		errorResponse(w, http.StatusInsufficientStorage, "no-space", err)
	default:
		errorResponse(w, http.StatusInternalServerError, "internal", err)
	}
}

// healthWriter carries into writeResponse whether the agent is degraded
// when the request came in.
type healthWriter struct {
	http.ResponseWriter
	degraded *apitypes.Degraded
}

// Unwrap lets http.ResponseController reach the connection.
func (w *healthWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withHealth makes every answer of h say whether the agent is degraded.
func (s *Server) withHealth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &healthWriter{ResponseWriter: w}
		if reason, since := s.st.Degraded(); reason != "" {
			hw.degraded = &apitypes.Degraded{Reason: reason, Since: since}
		}
		h.ServeHTTP(hw, r)
	})
}
