package client

import (
	"bytes"
	"encoding/json"
	"net/url"
)

// SetHealth tells the agent, through the in-app socket, the health of the
// app that calls (the agent knows which by its credentials).
func (c *Client) SetHealth(status, message string) error {
	body, _ := json.Marshal(map[string]string{"status": status, "message": message})
	_, err := c.do("POST", "/v1/health", nil, "application/json", bytes.NewReader(body), nil)
	return err
}

// AppConfig returns, through the in-app socket, the configuration of the
// app that calls: the keys asked for, or all of it.
func (c *Client) AppConfig(keys []string) (map[string]any, error) {
	q := url.Values{}
	for _, k := range keys {
		q.Add("key", k)
	}
	out := map[string]any{}
	_, err := c.do("GET", "/v1/config", q, "", nil, &out)
	return out, err
}
