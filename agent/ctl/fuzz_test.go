package ctl

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/api/apitypes"
)

// FuzzGroupOf checks that any /proc/PID/cgroup text is read without a
// panic, into the path of one of its lines or "".
func FuzzGroupOf(f *testing.F) {
	f.Add([]byte("12:devices:/paddock-1a2b/paddock.web.web\n0::/\n"))
	f.Add([]byte("0::/paddock/paddock.web.hook-install\n"))
	f.Add([]byte("5:cpu,devices:/x\n0::/y\n:::\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := groupOf(bytes.NewReader(data))
		if g != "" && !strings.Contains(string(data), g) {
			t.Fatalf("got group %q, not in the input", g)
		}
	})
}

// FuzzHealthRequest checks that any body of POST /v1/health is answered,
// 200 only for a valid status, without a panic, and that only a valid
// status is recorded.
func FuzzHealthRequest(f *testing.F) {
	f.Add([]byte(`{"status":"okay","message":"fine"}`))
	f.Add([]byte(`{"status":"error","message":"` + strings.Repeat("x", 300) + `"}`))
	f.Add([]byte(`{"status":"okay","app":"other"}`))
	f.Add([]byte(`{"status":`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := &healthRecorder{set: map[string]string{}}
		s := New(slog.New(slog.DiscardHandler), "paddock")
		s.Health = rec
		w := httptest.NewRecorder()
		s.postHealth(w, httptest.NewRequest("POST", "/v1/health", bytes.NewReader(body)), "a")
		var resp apitypes.Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
		switch w.Code {
		case http.StatusOK:
			st := strings.Fields(rec.get("a"))
			if len(st) < 2 || (st[1] != "okay" && st[1] != "waiting" && st[1] != "error") {
				t.Fatalf("recorded %q", rec.get("a"))
			}
		case http.StatusBadRequest:
			if rec.get("a") != "" {
				t.Fatalf("a refused request recorded %q", rec.get("a"))
			}
		default:
			t.Fatalf("got status %d", w.Code)
		}
	})
}
