package boot

import (
	"context"
	"net"
	"net/http"
	"time"
)

// readyPollInterval is how often waitAgent asks the agent.
var readyPollInterval = 20 * time.Millisecond

// waitAgent returns once the agent answers GET /v1/apps on its socket with
// 200 OK, or with ctx's error when ctx ends first.
func waitAgent(ctx context.Context, socket string) error {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}
	for {
		if agentAnswers(ctx, client) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(readyPollInterval):
		}
	}
}

func agentAnswers(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://paddock/v1/apps", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
