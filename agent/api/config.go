package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Configs is what the API asks of the app manager about the apps'
// configuration (appmgr.Manager).
type Configs interface {
	Config(app string, keys []string, pending bool) (map[string]any, error)
	Configure(app string, values map[string]any) (string, error)
}

// maxConfigBody bounds a configuration request's body.
const maxConfigBody = 128 << 10

// getConfig answers an app's configuration (root only: it may hold
// secrets), the keys asked for (?key=K, repeated) or all of it.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	if s.Configs == nil {
		errorResponse(w, http.StatusNotFound, "not-found", errors.New("this agent keeps no configuration"))
		return
	}
	cfg, err := s.Configs.Config(r.PathValue("name"), r.URL.Query()["key"], false)
	if err != nil {
		managerError(w, err)
		return
	}
	syncResponse(w, cfg)
}

// configRequest is the body of POST /v1/apps/{name}/config.
type configRequest struct {
	Values map[string]any `json:"values"`
}

// postConfig starts the change that sets values of an app's configuration.
func (s *Server) postConfig(w http.ResponseWriter, r *http.Request) {
	if s.Configs == nil {
		errorResponse(w, http.StatusNotFound, "not-found", errors.New("this agent keeps no configuration"))
		return
	}
	var req configRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConfigBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("cannot read the configuration request: %w", err))
		return
	}
	id, err := s.Configs.Configure(r.PathValue("name"), req.Values)
	if err != nil {
		managerError(w, err)
		return
	}
	asyncResponse(w, id)
}
