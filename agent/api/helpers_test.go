package api

import (
	"context"
	"path/filepath"
	"testing"
)

// serveSocket serves s on a new socket until the test ends and returns its path.
func serveSocket(t *testing.T, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	serveOn(t, s, sock)
	return sock
}

// serveOn serves s on the socket sock until the test ends, when it checks
// that the server shuts down cleanly.
func serveOn(t *testing.T, s *Server, sock string) {
	t.Helper()
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}
