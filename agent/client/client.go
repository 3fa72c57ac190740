// Package client talks to the agent's REST API over its unix socket. The
// admin commands of the paddock binary are built on it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/manifest"
)

// Client is a connection to one agent.
type Client struct {
	socket string
	http   *http.Client
	// OnDegraded, if set, is called with every answer of an agent that
	// says it is degraded (it cannot keep its state safe).
	OnDegraded func(apitypes.Degraded)
}

// New returns a client of the agent listening on socket; an empty socket
// means dirs.SocketPath.
func New(socket string) *Client {
	if socket == "" {
		socket = dirs.SocketPath
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Error is an error answered by the agent.
type Error struct {
	StatusCode int
	apitypes.ErrorResult
}

func (e *Error) Error() string { return e.Message }

// do sends a request and decodes the answer's result into result (when not
// nil); it returns the change id of async answers.
func (c *Client) do(method, path string, query url.Values, contentType string, body io.Reader, result any) (string, error) {
	u := url.URL{Scheme: "http", Host: "paddock", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		return "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", c.connError(err)
	}
	defer resp.Body.Close()
	var r apitypes.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", fmt.Errorf("cannot decode the agent's answer (%s): %w", resp.Status, err)
	}
	if r.Degraded != nil && c.OnDegraded != nil {
		c.OnDegraded(*r.Degraded)
	}
	if r.Type == "error" {
		e := &Error{StatusCode: r.StatusCode}
		if err := json.Unmarshal(r.Result, &e.ErrorResult); err != nil || e.Message == "" {
			e.Message = fmt.Sprintf("the agent answered %s", resp.Status)
		}
		return "", e
	}
	if result != nil && r.Result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return "", fmt.Errorf("cannot decode the agent's answer: %w", err)
		}
	}
	return r.Change, nil
}

// connError explains a failure to reach the agent.
func (c *Client) connError(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the paddock agent at %s: is 'paddock daemon' running?", c.socket)
	}
	return fmt.Errorf("cannot reach the paddock agent: %w", err)
}

// Apps lists the installed apps.
func (c *Client) Apps() ([]apitypes.AppInfo, error) {
	var out []apitypes.AppInfo
	_, err := c.do("GET", "/v1/apps", nil, "", nil, &out)
	return out, err
}

// App returns one installed app.
func (c *Client) App(name string) (apitypes.AppInfo, error) {
	var out apitypes.AppInfo
	if err := manifest.CheckName("app", name); err != nil {
		return out, err
	}
	_, err := c.do("GET", "/v1/apps/"+url.PathEscape(name), nil, "", nil, &out)
	return out, err
}

// Revert starts reverting the app to its previous revision and returns the change id.
func (c *Client) Revert(name string) (string, error) {
	return c.action(name, "revert")
}

// Remove starts removing the app and returns the change id.
func (c *Client) Remove(name string) (string, error) {
	return c.action(name, "remove")
}

func (c *Client) action(name, action string) (string, error) {
	if err := manifest.CheckName("app", name); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"action": action})
	return c.do("POST", "/v1/apps/"+url.PathEscape(name), nil, "application/json", bytes.NewReader(body), nil)
}

// Changes lists the changes; inProgress keeps those not finished.
func (c *Client) Changes(inProgress bool) ([]apitypes.ChangeInfo, error) {
	q := url.Values{}
	if inProgress {
		q.Set("select", "in-progress")
	}
	var out []apitypes.ChangeInfo
	_, err := c.do("GET", "/v1/changes", q, "", nil, &out)
	return out, err
}

// Change returns one change.
func (c *Client) Change(id string) (apitypes.ChangeInfo, error) {
	var out apitypes.ChangeInfo
	_, err := c.do("GET", "/v1/changes/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// Wait polls the change until it is ready, calling progress (if not nil)
// whenever a task's status changes, and returns its final state. A change
// that ended in error is returned with an error carrying its message.
func (c *Client) Wait(id string, progress func(apitypes.ChangeInfo)) (apitypes.ChangeInfo, error) {
	last := ""
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		ci, err := c.Change(id)
		if err != nil {
			return ci, err
		}
		if sig := signature(ci); progress != nil && sig != last {
			progress(ci)
			last = sig
		}
		if ci.Ready {
			if ci.Err != "" {
				return ci, errors.New(ci.Err)
			}
			return ci, nil
		}
		time.Sleep(delay)
	}
}

func signature(ci apitypes.ChangeInfo) string {
	var b bytes.Buffer
	for _, t := range ci.Tasks {
		fmt.Fprintf(&b, "%s=%s;", t.ID, t.Status)
	}
	return b.String()
}
