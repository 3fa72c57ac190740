// Package ctl serves the in-app API on /run/paddock-ctl.sock, the one
// channel from an app to the agent ('paddock ctl' inside the sandbox): an
// app reports its health and reads its configuration, and nothing else.
//
// The agent knows the caller by the kernel, never by what it says: the
// peer credentials of the connection (SO_PEERCRED) give its user, which
// names the app (each app runs as its own uid, from 70000), and the
// caller's cgroup (/proc/PID/cgroup) must be one of that app's sandbox
// groups. So an app speaks only for itself; root, other users, and
// processes outside the app's sandboxes are refused with a clear error.
// Connections are bounded per user and in all, like the admin API's.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/health"
	"paddock.dev/paddock/internal/localapi"
)

// DefaultLimits are the limits of the in-app socket: 'paddock ctl' holds
// one connection for one request.
var DefaultLimits = localapi.Limits{PerUID: 8, Total: 256}

// The timeouts of a connection: a request is small and answered at once.
var (
	readTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 30 * time.Second
)

// maxBody bounds a request's body.
const maxBody = 4 << 10

// Health is what the ctl socket asks of the health manager.
type Health interface {
	Set(app string, src health.Source, key string, status health.Status, message string)
}

// Server is the in-app API of one agent.
type Server struct {
	log    *slog.Logger
	http   *http.Server
	listen net.Listener
	// AppOfUID names the installed app that runs as uid, if any.
	AppOfUID func(uid int) (string, bool)
	// Health records what apps say of their health.
	Health Health
	// Config returns the app's configuration, the keys asked for (all
	// when none); nil when the agent keeps none.
	Config func(app string, keys []string) (map[string]any, error)
	// Limits bound the connections; set it before Listen.
	Limits localapi.Limits
	// cgroupParent is the parent of the apps' cgroups, which a caller's
	// must be in (cgroup.ParentFor of the root directory).
	cgroupParent string
}

// New returns the in-app API; cgroupParent is the parent cgroup of the
// apps' sandboxes (cgroup.ParentFor).
func New(log *slog.Logger, cgroupParent string) *Server {
	s := &Server{log: log, Limits: DefaultLimits, cgroupParent: cgroupParent}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/health", s.app(s.postHealth))
	mux.HandleFunc("GET /v1/config", s.app(s.getConfig))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		errorResponse(w, http.StatusNotFound, "not-found", fmt.Errorf("no such endpoint of the in-app API: %s %s", r.Method, r.URL.Path))
	})
	s.http = &http.Server{
		Handler:           mux,
		ConnContext:       localapi.ConnContext,
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// Listen creates the socket at path, replacing a stale one, in a folder
// of its own that the launcher shows in every sandbox (a kept sandbox
// sees the socket of an agent started after it). Every user may connect:
// the peer's identity decides.
func (s *Server) Listen(path string) error {
	l, err := localapi.Listen(path, localapi.Options{
		Limits: s.Limits, Name: "the in-app socket", Refusal: apitypes.Busy, Log: s.log, LogName: "in-app",
	})
	if err != nil {
		return err
	}
	s.listen = l
	return nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error { return localapi.Serve(s.http, s.listen) }

// Shutdown stops serving, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// app wraps a handler of requests from an app: it finds which app calls,
// or refuses the call.
func (s *Server) app(h func(w http.ResponseWriter, r *http.Request, app string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := localapi.PeerFrom(r.Context())
		if !ok {
			errorResponse(w, http.StatusForbidden, "forbidden", errors.New("cannot tell who connects to the in-app socket"))
			return
		}
		app, err := s.identify(p)
		if err != nil {
			errorResponse(w, http.StatusForbidden, "forbidden", err)
			return
		}
		h(w, r, app)
	}
}

// identify returns the app that the peer is, or why it is none.
func (s *Server) identify(p localapi.Peer) (string, error) {
	if p.UID == 0 {
		return "", errors.New("paddock ctl speaks for an app, from inside its sandbox: root is no app (use 'paddock config' and 'paddock info' as root)")
	}
	app, ok := "", false
	if s.AppOfUID != nil {
		app, ok = s.AppOfUID(int(p.UID))
	}
	if !ok {
		return "", fmt.Errorf("paddock ctl speaks for an app, from inside its sandbox: uid %d is no installed app's user", p.UID)
	}
	if err := checkCgroup(p.PID, app, s.cgroupParent); err != nil {
		return "", err
	}
	return app, nil
}

// healthRequest is the body of POST /v1/health.
type healthRequest struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (s *Server) postHealth(w http.ResponseWriter, r *http.Request, app string) {
	var req healthRequest
	if err := decode(r, &req); err != nil {
		errorResponse(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	st := health.Status(req.Status)
	if !st.Valid() {
		errorResponse(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown health status %q (want okay, waiting or error)", req.Status))
		return
	}
	if s.Health == nil {
		errorResponse(w, http.StatusServiceUnavailable, "internal", errors.New("the agent keeps no health"))
		return
	}
	s.Health.Set(app, health.SourceCtl, "", st, req.Message)
	s.log.Info("app health", "app", app, "status", st)
	syncResponse(w, map[string]string{"app": app, "status": string(st)})
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, app string) {
	if s.Config == nil {
		errorResponse(w, http.StatusServiceUnavailable, "internal", errors.New("the agent keeps no configuration"))
		return
	}
	cfg, err := s.Config(app, r.URL.Query()["key"])
	if err != nil {
		errorResponse(w, http.StatusNotFound, "not-found", err)
		return
	}
	syncResponse(w, cfg)
}

// decode reads a JSON body of at most maxBody bytes with no unknown field.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("cannot read the request: %w", err)
	}
	return nil
}

func syncResponse(w http.ResponseWriter, v any) { apitypes.SyncResponse(v).Write(w) }

func errorResponse(w http.ResponseWriter, code int, kind string, err error) {
	apitypes.ErrorResponse(code, kind, err.Error()).Write(w)
}
