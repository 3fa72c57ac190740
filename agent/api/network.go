package api

import (
	"net/http"

	"paddock.dev/paddock/agent/api/apitypes"
)

// Network is what the API asks of the network manager (netmgr.Manager).
type Network interface {
	Status() *apitypes.NetworkStatus
}

// ServeNetwork adds GET /v1/network: what the agent did to bring the
// network up. Call it before Serve.
func (s *Server) ServeNetwork(n Network) {
	s.mux.HandleFunc("GET /v1/network", func(w http.ResponseWriter, r *http.Request) {
		syncResponse(w, n.Status())
	})
}
