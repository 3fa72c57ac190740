package api

import (
	"fmt"
	"net/http"
	"time"

	"paddock.dev/paddock/agent/state"
)

// ChangeInfo is what the API reports of a change.
type ChangeInfo struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Summary   string     `json:"summary"`
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

// changeInfo describes chg; the state must be locked.
func changeInfo(chg *state.Change) ChangeInfo {
	ci := ChangeInfo{
		ID:        chg.ID(),
		Kind:      chg.Kind(),
		Summary:   chg.Summary(),
		Status:    chg.Status().String(),
		Ready:     chg.IsReady(),
		SpawnTime: chg.SpawnTime(),
		Tasks:     []TaskInfo{},
	}
	if err := chg.Err(); err != nil {
		ci.Err = err.Error()
	}
	if t := chg.ReadyTime(); !t.IsZero() {
		ci.ReadyTime = &t
	}
	for _, t := range chg.Tasks() {
		ci.Tasks = append(ci.Tasks, TaskInfo{ID: t.ID(), Kind: t.Kind(), Summary: t.Summary(), Status: t.Status().String(), Log: t.Log()})
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
	out := []ChangeInfo{}
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
