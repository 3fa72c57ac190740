package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"paddock.dev/paddock/agent/api/apitypes"
)

// Services lists the services, of app only unless app is "".
func (c *Client) Services(app string) ([]apitypes.ServiceInfo, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	var out []apitypes.ServiceInfo
	_, err := c.do("GET", "/v1/services", q, "", nil, &out)
	return out, err
}

// ServicesAction starts the change that starts, stops or restarts
// (action) the services target names (APP or APP.SVC), and returns its id.
func (c *Client) ServicesAction(action, target string) (string, error) {
	body, _ := json.Marshal(map[string]string{"action": action, "target": target})
	return c.do("POST", "/v1/services", nil, "application/json", bytes.NewReader(body), nil)
}

// Logs returns the last n lines (0: all) of the logs of target's services.
func (c *Client) Logs(target string, n int) ([]apitypes.LogLine, error) {
	q := url.Values{"service": {target}, "n": {strconv.Itoa(n)}}
	var out []apitypes.LogLine
	_, err := c.do("GET", "/v1/logs", q, "", nil, &out)
	return out, err
}

// FollowLogs calls emit with the last n lines of the logs of target's
// services, then with each new line, until the agent goes or emit fails.
func (c *Client) FollowLogs(target string, n int, emit func(apitypes.LogLine) error) error {
	q := url.Values{"service": {target}, "n": {strconv.Itoa(n)}, "follow": {"true"}}
	u := url.URL{Scheme: "http", Host: "paddock", Path: "/v1/logs", RawQuery: q.Encode()}
	resp, err := c.http.Get(u.String())
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/x-ndjson" {
		var r apitypes.Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return fmt.Errorf("cannot decode the agent's answer (%s): %w", resp.Status, err)
		}
		e := &Error{StatusCode: r.StatusCode}
		if json.Unmarshal(r.Result, &e.ErrorResult) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("the agent answered %s", resp.Status)
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l apitypes.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("cannot decode the agent's answer: %w", err)
		}
		if err := emit(l); err != nil {
			return err
		}
	}
	return sc.Err()
}
