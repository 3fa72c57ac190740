package client

import (
	"bytes"
	"encoding/json"
	"net/url"

	"paddock.dev/paddock/ota/manifest"
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

// Config returns the configuration of app (root only): the keys asked
// for, or all of it.
func (c *Client) Config(app string, keys []string) (map[string]any, error) {
	if err := manifest.CheckName("app", app); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, k := range keys {
		q.Add("key", k)
	}
	out := map[string]any{}
	_, err := c.do("GET", "/v1/apps/"+url.PathEscape(app)+"/config", q, "", nil, &out)
	return out, err
}

// Configure starts the change that sets values of app's configuration
// (root only) and returns its id.
func (c *Client) Configure(app string, values map[string]any) (string, error) {
	if err := manifest.CheckName("app", app); err != nil {
		return "", err
	}
	body, err := json.Marshal(map[string]any{"values": values})
	if err != nil {
		return "", err
	}
	return c.do("POST", "/v1/apps/"+url.PathEscape(app)+"/config", nil, "application/json", bytes.NewReader(body), nil)
}
