package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/localapi"
)

// newServer returns a server over a fresh state in a temporary root.
func newServer(t *testing.T) (*Server, *state.State) {
	t.Helper()
	st := statetest.Open(t)
	log := slog.New(slog.DiscardHandler)
	apps := appmgr.New(manager.NewEnv(st, state.NewRunner(st), log))
	return New(st, apps, log), st
}

// asUID returns r with the peer uid set as localapi.ConnContext sets it.
func asUID(r *http.Request, uid uint32) *http.Request {
	return r.WithContext(localapi.WithPeer(r.Context(), localapi.Peer{UID: uid}))
}

// serve runs r through the server's handler and decodes the envelope.
func serve(t *testing.T, s *Server, r *http.Request) (*httptest.ResponseRecorder, apitypes.Response) {
	t.Helper()
	w := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: got Content-Type %q, want application/json", r.Method, r.URL, ct)
	}
	var resp apitypes.Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s %s: cannot decode answer %q: %v", r.Method, r.URL, w.Body, err)
	}
	if resp.StatusCode != w.Code {
		t.Errorf("%s %s: got status-code %d in the envelope, HTTP status %d, want them equal", r.Method, r.URL, resp.StatusCode, w.Code)
	}
	return w, resp
}

// errorOf decodes the result of an error answer.
func errorOf(t *testing.T, resp apitypes.Response) apitypes.ErrorResult {
	t.Helper()
	if resp.Type != "error" {
		t.Fatalf("got type %q, want error", resp.Type)
	}
	var e apitypes.ErrorResult
	if err := json.Unmarshal(resp.Result, &e); err != nil {
		t.Fatalf("cannot decode error result %s: %v", resp.Result, err)
	}
	if e.Message == "" {
		t.Errorf("got an error without a message")
	}
	return e
}

// upload returns a multipart body with the given parts, in order.
func upload(t *testing.T, parts ...[2]string) (string, io.Reader) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		w, err := mw.CreateFormField(p[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p[1])
	}
	mw.Close()
	return mw.FormDataContentType(), &b
}

// addChange adds a change of app name with one task, left in status.
func addChange(st *state.State, name string, status state.Status) string {
	st.Lock()
	defer st.Unlock()
	chg := st.NewChange("install", "Install "+name)
	chg.Set("app-name", name)
	manager.Touch(chg, manager.AppKey(name))
	t := st.NewTask("store-package", "Store "+name)
	chg.AddTask(t)
	t.SetStatus(status)
	return chg.ID()
}

func TestErrors(t *testing.T) {
	s, st := newServer(t)
	addChange(st, "busy", state.DoStatus)
	tests := []struct {
		name        string
		method, url string
		contentType string
		body        func() (string, io.Reader)
		code        int
		kind        string
		msg         string // in the message
	}{
		{"unknown endpoint", "GET", "/v1/nothing", "", nil, 404, "not-found", "GET /v1/nothing"},
		{"unknown version", "GET", "/v2/apps", "", nil, 404, "not-found", "no such API endpoint"},
		{"unknown app", "GET", "/v1/apps/nope", "", nil, 404, "not-found", "nope"},
		{"unknown change", "GET", "/v1/changes/42", "", nil, 404, "not-found", `"42"`},
		{"bad select", "GET", "/v1/changes?select=done", "", nil, 400, "bad-request", `"done"`},
		{"upload not multipart", "POST", "/v1/apps", "application/json", func() (string, io.Reader) { return "", strings.NewReader("{}") }, 400, "bad-request", "multipart/form-data"},
		{"multipart without boundary", "POST", "/v1/apps", "multipart/form-data", func() (string, io.Reader) { return "", strings.NewReader("") }, 400, "bad-request", "multipart"},
		{"upload without parts", "POST", "/v1/apps", "", func() (string, io.Reader) { return upload(t) }, 400, "bad-request", "assertions"},
		{"package part first", "POST", "/v1/apps", "", func() (string, io.Reader) { return upload(t, [2]string{"package", "x"}) }, 400, "bad-request", `"package" came where "assertions"`},
		{"upload without package", "POST", "/v1/apps", "", func() (string, io.Reader) { return upload(t, [2]string{"assertions", "x"}) }, 400, "bad-request", "package part"},
		{"assertions twice", "POST", "/v1/apps", "", func() (string, io.Reader) {
			return upload(t, [2]string{"assertions", "x"}, [2]string{"assertions", "y"})
		}, 400, "bad-request", "package part"},
		{"assertions too large", "POST", "/v1/apps", "", func() (string, io.Reader) {
			return upload(t, [2]string{"assertions", strings.Repeat("a", maxAssertions+1)}, [2]string{"package", "x"})
		}, 400, "bad-request", "larger than"},
		// No trusted keys in the temporary root: the manager refuses.
		{"untrusted upload", "POST", "/v1/apps", "", func() (string, io.Reader) {
			return upload(t, [2]string{"assertions", "x"}, [2]string{"package", "x"})
		}, 400, "refused", "no trusted keys"},
		{"bad action body", "POST", "/v1/apps/hello", "application/json", func() (string, io.Reader) { return "", strings.NewReader("{") }, 400, "bad-request", "cannot decode"},
		{"unknown action", "POST", "/v1/apps/hello", "application/json", func() (string, io.Reader) { return "", strings.NewReader(`{"action":"explode"}`) }, 400, "bad-request", `"explode"`},
		{"revert unknown app", "POST", "/v1/apps/nope", "application/json", func() (string, io.Reader) { return "", strings.NewReader(`{"action":"revert"}`) }, 404, "not-found", "nope"},
		{"remove unknown app", "POST", "/v1/apps/nope", "application/json", func() (string, io.Reader) { return "", strings.NewReader(`{"action":"remove"}`) }, 404, "not-found", "nope"},
		{"change in progress", "POST", "/v1/apps/busy", "application/json", func() (string, io.Reader) { return "", strings.NewReader(`{"action":"remove"}`) }, 409, "conflict", "has not finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			ct := tt.contentType
			if tt.body != nil {
				var bodyCT string
				bodyCT, body = tt.body()
				if ct == "" {
					ct = bodyCT
				}
			}
			r := httptest.NewRequest(tt.method, tt.url, body)
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			w, resp := serve(t, s, asUID(r, 0))
			if w.Code != tt.code {
				t.Errorf("got status %d, want %d (%s)", w.Code, tt.code, w.Body)
			}
			e := errorOf(t, resp)
			if e.Kind != tt.kind {
				t.Errorf("got kind %q, want %q", e.Kind, tt.kind)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got message %q, want it to contain %q", e.Message, tt.msg)
			}
		})
	}
}

func TestRootOnly(t *testing.T) {
	s, _ := newServer(t)
	called := false
	h := s.root(func(w http.ResponseWriter, r *http.Request) {
		called = true
		syncResponse(w, "ok")
	})
	tests := []struct {
		name string
		req  func() *http.Request
		code int
	}{
		{"root", func() *http.Request { return asUID(httptest.NewRequest("POST", "/v1/apps", nil), 0) }, 200},
		{"user", func() *http.Request { return asUID(httptest.NewRequest("POST", "/v1/apps", nil), 1000) }, 403},
		{"unknown peer", func() *http.Request { return httptest.NewRequest("POST", "/v1/apps", nil) }, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called = false
			w := httptest.NewRecorder()
			h(w, tt.req())
			if w.Code != tt.code {
				t.Errorf("got status %d, want %d", w.Code, tt.code)
			}
			if called != (tt.code == 200) {
				t.Errorf("got handler called %v, want %v", called, tt.code == 200)
			}
			if tt.code == 403 {
				var resp apitypes.Response
				if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
					t.Fatal(err)
				}
				if e := errorOf(t, resp); e.Kind != "forbidden" || !strings.Contains(e.Message, "needs root") {
					t.Errorf("got %+v, want kind forbidden saying it needs root", e)
				}
			}
		})
	}
}

// TestMutationsNeedRoot checks that the mutating endpoints are wrapped: a
// request from a user is refused before its body is looked at.
func TestMutationsNeedRoot(t *testing.T) {
	s, _ := newServer(t)
	for _, url := range []string{"/v1/apps", "/v1/apps/hello"} {
		r := asUID(httptest.NewRequest("POST", url, strings.NewReader(`{"action":"remove"}`)), 1000)
		w, resp := serve(t, s, r)
		if w.Code != 403 {
			t.Errorf("POST %s as uid 1000: got status %d, want 403", url, w.Code)
		}
		if e := errorOf(t, resp); e.Kind != "forbidden" {
			t.Errorf("POST %s as uid 1000: got kind %q, want forbidden", url, e.Kind)
		}
	}
	// Reads are open to every user.
	for _, url := range []string{"/v1/apps", "/v1/changes"} {
		w, _ := serve(t, s, asUID(httptest.NewRequest("GET", url, nil), 1000))
		if w.Code != 200 {
			t.Errorf("GET %s as uid 1000: got status %d, want 200", url, w.Code)
		}
	}
}

// TestServeOverSocket sends requests over the real socket, so that the
// peer uid comes from the kernel: a mutation is refused for a user and
// passes the root check (to meet the manager) for root.
func TestServeOverSocket(t *testing.T) {
	s, _ := newServer(t)
	serveOn(t, s, dirs.SocketPath)
	fi, err := os.Stat(dirs.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o666 {
		t.Errorf("socket mode: got %v, want 0666", perm)
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", dirs.SocketPath)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://paddock/v1/apps/nope", "application/json", strings.NewReader(`{"action":"remove"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := http.StatusNotFound // root gets through to the manager, which knows no such app
	if os.Geteuid() != 0 {
		want = http.StatusForbidden
	}
	if resp.StatusCode != want {
		t.Errorf("remove as uid %d: got status %d, want %d", os.Geteuid(), resp.StatusCode, want)
	}

	// A second server on the same socket must not steal it.
	s2, _ := newServerAt(t)
	if err := s2.Listen(dirs.SocketPath); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen: got %v, want another daemon is running", err)
	}
}

// newServerAt returns a server over a fresh state in the current root.
func newServerAt(t *testing.T) (*Server, *state.State) {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	return New(st, appmgr.New(manager.NewEnv(st, state.NewRunner(st), log)), log), st
}

func TestListenReplacesStaleSocket(t *testing.T) {
	s, _ := newServer(t)
	// A socket file left by an agent that died: nothing listens on it.
	if err := os.MkdirAll(dirs.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", dirs.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(dirs.SocketPath); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if err := s.Listen(dirs.SocketPath); err != nil {
		t.Fatalf("Listen over a stale socket: got %v, want success", err)
	}
	s.listen.Close()
}

func TestChanges(t *testing.T) {
	s, st := newServer(t)
	done := addChange(st, "one", state.DoneStatus)
	doing := addChange(st, "two", state.DoingStatus)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{done, doing}},
		{"?select=all", []string{done, doing}},
		{"?select=in-progress", []string{doing}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w, resp := serve(t, s, httptest.NewRequest("GET", "/v1/changes"+tt.query, nil))
			if w.Code != 200 || resp.Type != "sync" {
				t.Fatalf("got %d %s, want 200 sync", w.Code, resp.Type)
			}
			var got []apitypes.ChangeInfo
			if err := json.Unmarshal(resp.Result, &got); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got changes %v, want %v", ids, tt.want)
			}
		})
	}

	// No changes at all is an empty list, not null, for scripts.
	s2, _ := newServerAt(t)
	w, resp := serve(t, s2, httptest.NewRequest("GET", "/v1/changes?select=in-progress", nil))
	if w.Code != 200 || string(resp.Result) != "[]" {
		t.Errorf("no changes: got %d %s, want 200 []", w.Code, resp.Result)
	}

	w, resp = serve(t, s, httptest.NewRequest("GET", "/v1/changes/"+done, nil))
	if w.Code != 200 {
		t.Fatalf("got status %d, want 200", w.Code)
	}
	var ci apitypes.ChangeInfo
	if err := json.Unmarshal(resp.Result, &ci); err != nil {
		t.Fatal(err)
	}
	if ci.ID != done || ci.Status != "Done" || !ci.Ready || ci.ReadyTime == nil || len(ci.Tasks) != 1 || ci.Tasks[0].Status != "Done" {
		t.Errorf("got %+v, want change %s Done and ready with one Done task", ci, done)
	}
}

func TestApps(t *testing.T) {
	s, _ := newServer(t)
	w, resp := serve(t, s, httptest.NewRequest("GET", "/v1/apps", nil))
	if w.Code != 200 || resp.Type != "sync" || string(resp.Result) != "[]" {
		t.Errorf("no apps: got %d %s %s, want 200 sync []", w.Code, resp.Type, resp.Result)
	}
}

// TestDegradedInEveryAnswer checks that while the state cannot be saved,
// every answer says so (issue 9 item 3: the agent now goes on instead of
// panicking, and must tell its users), and that the notice goes once the
// state is saved again.
func TestDegradedInEveryAnswer(t *testing.T) {
	s, st := newServer(t)
	t.Cleanup(st.Close)
	statetest.BreakSaving(t, st)
	for _, url := range []string{"/v1/apps", "/v1/changes", "/v1/nothing"} {
		_, resp := serve(t, s, httptest.NewRequest("GET", url, nil))
		if resp.Degraded == nil || !strings.Contains(resp.Degraded.Reason, "cannot save the agent's state") || resp.Degraded.Since.IsZero() {
			t.Errorf("GET %s while the state cannot be saved: got degraded %+v, want the reason and since when", url, resp.Degraded)
		}
	}
	statetest.MendSaving(t, st)
	if _, resp := serve(t, s, httptest.NewRequest("GET", "/v1/apps", nil)); resp.Degraded != nil {
		t.Errorf("GET /v1/apps once saved: got degraded %+v, want none", resp.Degraded)
	}
}
