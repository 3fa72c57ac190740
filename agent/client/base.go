package client

import (
	"bytes"
	"encoding/json"

	"paddock.dev/paddock/agent/api/apitypes"
)

// BaseStatus returns the base slots and the last try of a base.
func (c *Client) BaseStatus() (*apitypes.BaseStatus, error) {
	var out apitypes.BaseStatus
	if _, err := c.do("GET", "/v1/base", nil, "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BaseUpdate starts a base update and returns the change id.
func (c *Client) BaseUpdate(req apitypes.BaseUpdateRequest) (string, error) {
	body, _ := json.Marshal(req)
	return c.do("POST", "/v1/base", nil, "application/json", bytes.NewReader(body), nil)
}
