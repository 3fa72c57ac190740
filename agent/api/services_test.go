package api

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/services"
	"paddock.dev/paddock/agent/state"
)

// newServicesServer returns a server with the service endpoints, over a
// fresh state in a temporary root (no app installed).
func newServicesServer(t *testing.T) *Server {
	t.Helper()
	s, st := newServer(t)
	s.SetServices(services.New(manager.NewEnv(st, state.NewRunner(st), slog.New(slog.DiscardHandler))))
	return s
}

func TestServicesEndpoints(t *testing.T) {
	s := newServicesServer(t)
	tests := []struct {
		name, method, url, body string
		uid                     uint32
		code                    int
		kind, message           string
	}{
		{"list as a user", "GET", "/v1/services", "", 1000, 200, "", ""},
		{"list of an app", "GET", "/v1/services?app=hello", "", 1000, 200, "", ""},
		{"start as a user", "POST", "/v1/services", `{"action":"start","target":"hello"}`, 1000, 403, "forbidden", "needs root"},
		{"logs as a user", "GET", "/v1/logs?service=hello", "", 1000, 403, "forbidden", "needs root"},
		{"unknown action", "POST", "/v1/services", `{"action":"enable","target":"hello"}`, 0, 400, "bad-request", `unknown action "enable"`},
		{"bad body", "POST", "/v1/services", `{`, 0, 400, "bad-request", "cannot decode"},
		{"bad target", "POST", "/v1/services", `{"action":"stop","target":"../x"}`, 0, 400, "bad-request", "invalid app name"},
		{"bad service", "GET", "/v1/logs?service=hello.Web", "", 0, 400, "bad-request", "invalid service name"},
		{"not installed", "POST", "/v1/services", `{"action":"restart","target":"hello.web"}`, 0, 404, "not-found", "hello is not installed"},
		{"logs not installed", "GET", "/v1/logs?service=hello", "", 0, 404, "not-found", "hello is not installed"},
		{"logs bad count", "GET", "/v1/logs?service=hello&n=x", "", 0, 400, "bad-request", `invalid line count "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := asUID(httptest.NewRequest(tt.method, tt.url, strings.NewReader(tt.body)), tt.uid)
			w, resp := serve(t, s, r)
			if w.Code != tt.code {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 200 {
				if string(resp.Result) != "[]" {
					t.Errorf("got %s, want []", resp.Result)
				}
				return
			}
			if e := errorOf(t, resp); e.Kind != tt.kind || !strings.Contains(e.Message, tt.message) {
				t.Errorf("got %+v, want kind %s saying %q", e, tt.kind, tt.message)
			}
		})
	}
}
