package client

import (
	"bytes"
	"encoding/json"
	"net/url"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/ota/manifest"
)

// Interfaces lists the interface catalog, with the gadget's slots.
func (c *Client) Interfaces() ([]apitypes.InterfaceInfo, error) {
	var out []apitypes.InterfaceInfo
	_, err := c.do("GET", "/v1/interfaces", nil, "", nil, &out)
	return out, err
}

// Connections lists the plugs of the installed apps (of app only, when it
// is not "") and their connections.
func (c *Client) Connections(app string) ([]apitypes.ConnectionInfo, error) {
	q := url.Values{}
	if app != "" {
		if err := manifest.CheckName("app", app); err != nil {
			return nil, err
		}
		q.Set("app", app)
	}
	var out []apitypes.ConnectionInfo
	_, err := c.do("GET", "/v1/connections", q, "", nil, &out)
	return out, err
}

// Connect starts connecting the plug APP:PLUG to slot ("" for the only
// slot that fits) and returns the change id.
func (c *Client) Connect(plug, slot string) (string, error) {
	return c.connection(apitypes.ConnectRequest{Action: "connect", Plug: plug, Slot: slot})
}

// Disconnect starts disconnecting the plug APP:PLUG and returns the change id.
func (c *Client) Disconnect(plug string) (string, error) {
	return c.connection(apitypes.ConnectRequest{Action: "disconnect", Plug: plug})
}

func (c *Client) connection(req apitypes.ConnectRequest) (string, error) {
	body, _ := json.Marshal(req)
	return c.do("POST", "/v1/connections", nil, "application/json", bytes.NewReader(body), nil)
}
