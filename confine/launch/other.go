//go:build !linux

package launch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"paddock.dev/paddock/confine/profiles"
)

// SandboxArg is the hidden first argument of a sandbox's init.
const SandboxArg = "__sandbox"

var errNotLinux = errors.New("cannot run an app: sandboxes need Linux (run it on the device, or in 'paddock vm run')")

// Run fails: sandboxes need Linux.
func Run(spec *Spec) (int, error) { return 0, errNotLinux }

// SandboxMain fails: sandboxes need Linux.
func SandboxMain() {
	fmt.Fprintln(os.Stderr, "error:", errNotLinux)
	os.Exit(126)
}

// StopSandboxes does nothing where there are no sandboxes.
func StopSandboxes(app string, rev int) error { return nil }

// RetireSandboxes does nothing where there are no sandboxes.
func RetireSandboxes() {}

// SandboxPID fails: sandboxes need Linux.
func SandboxPID(app, cmd string, rev int) (int, error) { return 0, errNotLinux }

// DialLoopback fails: sandboxes need Linux.
func DialLoopback(ctx context.Context, pid, port int) (net.Conn, error) { return nil, errNotLinux }

// ApplyPolicy fails: sandboxes need Linux.
func ApplyPolicy(old, new *profiles.Policy) ([]int, error) { return nil, errNotLinux }
