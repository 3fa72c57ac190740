package apitypes

import "time"

// NetworkStatus is what GET /v1/network answers and 'paddock network'
// shows: what the agent did to bring the appliance's network up.
type NetworkStatus struct {
	// Managed says that the agent brings the network up; Why says why not
	// when it does not (not the appliance, or network: none).
	Managed    bool               `json:"managed"`
	Why        string             `json:"why,omitempty"`
	Interfaces []NetworkInterface `json:"interfaces"`
}

// NetworkInterface is one interface the agent brings up.
type NetworkInterface struct {
	Name string `json:"name"`
	// Method is dhcp or static.
	Method string `json:"method"`
	// Address (with its prefix length), Gateway and DNS are what the
	// interface has now, from its lease or agent.yaml; empty before.
	Address string   `json:"address,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
	// Server is the DHCP server of the lease; LeaseExpiry when it ends
	// unless renewed, and Renew when the agent renews it.
	Server      string    `json:"server,omitempty"`
	LeaseExpiry time.Time `json:"lease-expiry,omitzero"`
	Renew       time.Time `json:"renew,omitzero"`
	// Since is when the interface got what it has now.
	Since time.Time `json:"since,omitzero"`
	// Error is the last attempt's error, empty once one succeeds; Retry
	// is when the next attempt runs after it.
	Error string    `json:"error,omitempty"`
	Retry time.Time `json:"retry,omitzero"`
}
