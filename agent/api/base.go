package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/boot"
)

// Base is what the API asks of the base manager (basemgr.Manager).
type Base interface {
	Status() (*apitypes.BaseStatus, error)
	Update(opts basemgr.UpdateOptions) (string, error)
}

var _ Base = (*basemgr.Manager)(nil)

// ServeBase adds the endpoints of the base manager b: GET /v1/base (the
// slots) and POST /v1/base (a BaseUpdateRequest: starts an update). Call
// it before Serve.
func (s *Server) ServeBase(b Base) {
	s.mux.HandleFunc("GET /v1/base", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Status()
		if err != nil {
			errorResponse(w, http.StatusNotFound, "not-found", err)
			return
		}
		syncResponse(w, st)
	})
	s.mux.HandleFunc("POST /v1/base", s.root(func(w http.ResponseWriter, r *http.Request) {
		var req apitypes.BaseUpdateRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 256<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("cannot decode request: %w", err))
			return
		}
		if (req.File == "") == (len(req.URLs) == 0) {
			errorResponse(w, http.StatusBadRequest, "bad-request", errors.New("a base update takes a file or URLs"))
			return
		}
		id, err := b.Update(basemgr.UpdateOptions{Assertions: []byte(req.Assertions), File: req.File, URLs: req.URLs, Reboot: req.Reboot})
		switch {
		case err == nil:
			asyncResponse(w, id)
		case errors.Is(err, basemgr.ErrRefused):
			errorResponse(w, http.StatusBadRequest, "refused", err)
		case errors.Is(err, boot.ErrTryInProgress):
			errorResponse(w, http.StatusConflict, "conflict", err)
		default:
			managerError(w, err)
		}
	}))
}
