package client

import "paddock.dev/paddock/agent/api/apitypes"

// Network returns what the agent did to bring the network up.
func (c *Client) Network() (*apitypes.NetworkStatus, error) {
	var out apitypes.NetworkStatus
	if _, err := c.do("GET", "/v1/network", nil, "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
