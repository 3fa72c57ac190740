package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/ifacemgr"
)

// Interfaces is what the API asks of the interface manager (ifacemgr.Manager).
type Interfaces interface {
	Interfaces() ([]apitypes.InterfaceInfo, error)
	Connections(app string) ([]apitypes.ConnectionInfo, error)
	Connect(plug, slot, command string) (string, error)
	Disconnect(plug, command string) (string, error)
}

var _ Interfaces = (*ifacemgr.Manager)(nil)

// ServeInterfaces adds the endpoints of the interface manager i:
// GET /v1/interfaces, GET /v1/connections[?app=APP] and POST
// /v1/connections (a ConnectRequest). Call it before Serve.
func (s *Server) ServeInterfaces(i Interfaces) {
	s.mux.HandleFunc("GET /v1/interfaces", func(w http.ResponseWriter, r *http.Request) {
		out, err := i.Interfaces()
		if err != nil {
			interfacesError(w, err)
			return
		}
		syncResponse(w, out)
	})
	s.mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, r *http.Request) {
		out, err := i.Connections(r.URL.Query().Get("app"))
		if err != nil {
			interfacesError(w, err)
			return
		}
		syncResponse(w, out)
	})
	s.mux.HandleFunc("POST /v1/connections", s.root(func(w http.ResponseWriter, r *http.Request) {
		var req apitypes.ConnectRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("cannot decode request: %w", err))
			return
		}
		var id string
		var err error
		switch req.Action {
		case "connect":
			id, err = i.Connect(req.Plug, req.Slot, "")
		case "disconnect":
			if req.Slot != "" {
				errorResponse(w, http.StatusBadRequest, "bad-request", errors.New("disconnect takes no slot (a plug has one connection)"))
				return
			}
			id, err = i.Disconnect(req.Plug, "")
		default:
			errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown action %q (want connect or disconnect)", req.Action))
			return
		}
		if err != nil {
			interfacesError(w, err)
			return
		}
		asyncResponse(w, id)
	}))
}

// interfacesError answers with the status that fits an error of the
// interface manager.
func interfacesError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ifacemgr.ErrNotInstalled):
		errorResponse(w, http.StatusNotFound, "not-found", err)
	case errors.Is(err, ifacemgr.ErrRefused):
		errorResponse(w, http.StatusBadRequest, "refused", err)
	default:
		managerError(w, err)
	}
}
