package api

import (
	"net/http/httptest"
	"testing"
)

// TestOnRequest checks that each request, answered or refused, is told to
// OnRequest (the agent waits for quiet after the last one before it gives
// memory back).
func TestOnRequest(t *testing.T) {
	s, _ := newServer(t)
	n := 0
	s.OnRequest = func() { n++ }
	serve(t, s, asUID(httptest.NewRequest("GET", "/v1/apps", nil), 0))
	serve(t, s, asUID(httptest.NewRequest("GET", "/v1/no-such-endpoint", nil), 0))
	if n != 2 {
		t.Errorf("OnRequest: got %d calls, want 2", n)
	}
}
