package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/localapi"
)

// The timeouts of the API's connections. A request must arrive whole
// within readTimeout and be answered within writeTimeout (an upload gets
// uploadStall more each time data comes in); a connection with no request
// in flight is closed after idleTimeout. Tests shorten them.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 30 * time.Second
	uploadStall       = 60 * time.Second
)

// DefaultLimits are the limits of the agent's API. A paddock command holds
// one connection; 16 users at their limit fill the share of non-root users.
var DefaultLimits = localapi.Limits{PerUID: 32, Total: 512, RootReserve: 32}

// Apps is what the API asks of the app manager (appmgr.Manager).
type Apps interface {
	List() []apitypes.AppInfo
	Info(name string) (apitypes.AppInfo, error)
	Install(bundle []byte, pkg io.Reader, opts appmgr.InstallOptions) (string, error)
	Revert(name string) (string, error)
	Remove(name string) (string, error)
}

var _ Apps = (*appmgr.Manager)(nil)

// Server is the REST API of one agent.
type Server struct {
	st     *state.State
	apps   Apps
	log    *slog.Logger
	http   *http.Server
	listen net.Listener
	mux    *http.ServeMux
	// services serves the service endpoints once SetServices was called.
	services Services
	// Limits bound the connections; set it before Listen.
	Limits localapi.Limits
	// Configs keeps the apps' configuration (config.go); set it before Serve.
	Configs Configs
	// Health returns an app's health, or nil; set it before Serve.
	Health func(app string) *apitypes.AppHealth
	// OnRequest, when set before Serve, is called as each request arrives
	// (the agent counts requests as activity: agent/daemon/idle.go).
	OnRequest func()
}

// New returns an API server over the agent's state and app manager.
func New(st *state.State, apps Apps, log *slog.Logger) *Server {
	s := &Server{st: st, apps: apps, log: log, Limits: DefaultLimits}
	mux := http.NewServeMux()
	s.mux = mux
	mux.HandleFunc("GET /v1/apps", s.getApps)
	mux.HandleFunc("POST /v1/apps", s.root(s.postApps))
	mux.HandleFunc("GET /v1/apps/{name}", s.getApp)
	mux.HandleFunc("POST /v1/apps/{name}", s.root(s.postApp))
	mux.HandleFunc("GET /v1/apps/{name}/config", s.root(s.getConfig))
	mux.HandleFunc("POST /v1/apps/{name}/config", s.root(s.postConfig))
	mux.HandleFunc("GET /v1/changes", s.getChanges)
	mux.HandleFunc("GET /v1/changes/{id}", s.getChange)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		errorResponse(w, http.StatusNotFound, "not-found", fmt.Errorf("no such API endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.http = &http.Server{
		Handler:           s.withActivity(s.withHealth(mux)),
		ConnContext:       localapi.ConnContext,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// Listen creates the unix socket at path, replacing a stale one, readable
// and writable by every local user (mutations are checked per request, and
// connections are bounded by s.Limits).
func (s *Server) Listen(path string) error {
	l, err := localapi.Listen(path, localapi.Options{
		Limits: s.Limits, Name: "the paddock agent", Refusal: apitypes.Busy, Log: s.log, LogName: "API",
	})
	if err != nil {
		return err
	}
	s.listen = l
	return nil
}

// Serve answers requests until Shutdown.
func (s *Server) Serve() error { return localapi.Serve(s.http, s.listen) }

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// root wraps a handler that changes the device: only root may call it.
func (s *Server) root(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, ok := localapi.PeerFrom(r.Context()); !ok || p.UID != 0 {
			errorResponse(w, http.StatusForbidden, "forbidden", errors.New("permission denied: this needs root (try with sudo)"))
			return
		}
		h(w, r)
	}
}

// withActivity calls OnRequest before h serves a request.
func (s *Server) withActivity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.OnRequest != nil {
			s.OnRequest()
		}
		h.ServeHTTP(w, r)
	})
}
