// Package apitest starts a real agent API server for tests of its clients:
// the real server and app manager over a fresh state in a temporary root
// (package dirstest), on the real unix socket.
package apitest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/internal/dirs"
)

// Agent is a running API server and what it serves.
type Agent struct {
	State  *state.State
	Runner *state.Runner
	Apps   *appmgr.Manager
	// Server is the API server, for a test to add what a manager serves
	// (ServeNetwork, ...).
	Server *api.Server
}

// Start points dirs at a new temporary root and serves the API on
// dirs.SocketPath until the test ends; then it stops the server and fails
// the test if serving failed. Tasks run only when the test calls
// Runner.Ensure, or after RunTasks.
func Start(t testing.TB) *Agent {
	t.Helper()
	st := statetest.Open(t)
	log := slog.New(slog.DiscardHandler)
	a := &Agent{State: st, Runner: state.NewRunner(st)}
	a.Apps = appmgr.New(manager.NewEnv(st, a.Runner, log))
	srv := api.New(st, a.Apps, log)
	a.Server = srv
	if err := srv.Listen(dirs.SocketPath); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return a
}

// RunTasks runs ready tasks every few milliseconds until the test ends, as
// the daemon's loop does.
func (a *Agent) RunTasks(t testing.TB) {
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				a.Runner.Ensure()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
	})
}
