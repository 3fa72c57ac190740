package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/services"
)

// Services is what the API asks of the service manager (services.Manager).
type Services interface {
	Status(app string) []apitypes.ServiceInfo
	StartServices(target string) (string, error)
	StopServices(target string) (string, error)
	RestartServices(target string) (string, error)
	Logs(target string, n int) ([]apitypes.LogLine, error)
	Follow(ctx context.Context, target string, emit func(apitypes.LogLine) error) error
}

var _ Services = (*services.Manager)(nil)

// SetServices serves the service endpoints from svc; call it before Serve.
func (s *Server) SetServices(svc Services) {
	s.services = svc
	s.mux.HandleFunc("GET /v1/services", s.getServices)
	s.mux.HandleFunc("POST /v1/services", s.root(s.postServices))
	s.mux.HandleFunc("GET /v1/logs", s.root(s.getLogs))
}

// getServices lists the services, of the app named by ?app= if given.
func (s *Server) getServices(w http.ResponseWriter, r *http.Request) {
	svcs := s.services.Status(r.URL.Query().Get("app"))
	for i := range svcs {
		if s.Health != nil {
			svcs[i].AppHealth = s.Health(svcs[i].App)
		}
	}
	syncResponse(w, svcs)
}

// ServicesAction is the body of POST /v1/services.
type servicesAction struct {
	Action string `json:"action"` // start, stop or restart
	Target string `json:"target"` // APP or APP.SVC
}

func (s *Server) postServices(w http.ResponseWriter, r *http.Request) {
	var a servicesAction
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&a); err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("cannot decode request: %w", err))
		return
	}
	var id string
	var err error
	switch a.Action {
	case "start":
		id, err = s.services.StartServices(a.Target)
	case "stop":
		id, err = s.services.StopServices(a.Target)
	case "restart":
		id, err = s.services.RestartServices(a.Target)
	default:
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown action %q (want start, stop or restart)", a.Action))
		return
	}
	if err != nil {
		servicesError(w, err)
		return
	}
	asyncResponse(w, id)
}

// getLogs answers the last ?n= lines of the logs of ?service= (APP or
// APP.SVC); with ?follow=true it then streams each new line as one JSON
// object per line, until the client goes.
func (s *Server) getLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target := q.Get("service")
	n := 10
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("invalid line count %q (want a number, 0 for all)", v))
			return
		}
	}
	lines, err := s.services.Logs(target, n)
	if err != nil {
		servicesError(w, err)
		return
	}
	if q.Get("follow") != "true" {
		syncResponse(w, lines)
		return
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	emit := func(l apitypes.LogLine) error {
		if err := enc.Encode(l); err != nil {
			return err
		}
		return rc.Flush()
	}
	for _, l := range lines {
		if emit(l) != nil {
			return
		}
	}
	rc.Flush()
	s.services.Follow(r.Context(), target, emit)
}

// servicesError answers with the status that fits an error of the service manager.
func servicesError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, services.ErrNoService):
		errorResponse(w, http.StatusNotFound, "not-found", err)
		return
	case errors.Is(err, services.ErrInvalid):
		errorResponse(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	managerError(w, err)
}
