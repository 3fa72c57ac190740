package api

import (
	"fmt"
	"net/http"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
)

// changeInfo describes chg; the state must be locked.
func changeInfo(chg *state.Change) apitypes.ChangeInfo {
	ci := apitypes.ChangeInfo{
		ID:        chg.ID(),
		Kind:      chg.Kind(),
		Summary:   chg.Summary(),
		App:       manager.AppOf(chg),
		Status:    chg.Status().String(),
		Ready:     chg.IsReady(),
		SpawnTime: chg.SpawnTime(),
		Tasks:     []apitypes.TaskInfo{},
	}
	if err := chg.Err(); err != nil {
		ci.Err = err.Error()
	}
	if t := chg.ReadyTime(); !t.IsZero() {
		ci.ReadyTime = &t
	}
	for _, t := range chg.Tasks() {
		ci.Tasks = append(ci.Tasks, apitypes.TaskInfo{ID: t.ID(), Kind: t.Kind(), Summary: t.Summary(), Status: t.Status().String(), Log: t.Log()})
	}
	return ci
}

// getChanges lists changes; select=in-progress keeps those not ready yet.
func (s *Server) getChanges(w http.ResponseWriter, r *http.Request) {
	sel := r.URL.Query().Get("select")
	if sel != "" && sel != "all" && sel != "in-progress" {
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown select %q (want all or in-progress)", sel))
		return
	}
	s.st.Lock()
	defer s.st.Unlock()
	out := []apitypes.ChangeInfo{}
	for _, chg := range s.st.Changes() {
		if sel == "in-progress" && chg.IsReady() {
			continue
		}
		out = append(out, changeInfo(chg))
	}
	syncResponse(w, out)
}

func (s *Server) getChange(w http.ResponseWriter, r *http.Request) {
	s.st.Lock()
	defer s.st.Unlock()
	chg := s.st.Change(r.PathValue("id"))
	if chg == nil {
		errorResponse(w, http.StatusNotFound, "not-found", fmt.Errorf("no change with id %q", r.PathValue("id")))
		return
	}
	syncResponse(w, changeInfo(chg))
}
