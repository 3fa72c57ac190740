package localapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// Listen creates the unix socket at path, and its folder if missing, and
// returns a Listener of its connections within o.Limits. Every local user
// may connect (mode 0666): the peer's credentials decide what it may do.
// A socket that an agent which ended left behind is replaced; one that a
// process answers on is not, since another agent runs.
func Listen(path string, o Options) (*Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the folder of %s: %w", path, err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("cannot listen on %s: another daemon is running", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	return NewListener(l, o), nil
}

// Serve serves hs on l until hs.Shutdown, after which it returns nil.
func Serve(hs *http.Server, l net.Listener) error {
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
