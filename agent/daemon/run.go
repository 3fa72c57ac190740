package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/dirs"
)

const usage = `Usage: paddock daemon [--verbose]

Runs the paddock agent: it serves the admin API on $PADDOCK_ROOT/run/paddock.sock,
runs changes (install, refresh, revert, remove) step by step, and at start
re-mounts installed revisions and resumes any change that a crash or power
cut interrupted. Stop it with SIGTERM or SIGINT.

Environment:
  PADDOCK_ROOT   the root directory of every path (default /)
  PADDOCK_FAULT  for crash tests: TASK:before|after makes the agent exit abruptly there`

// Run runs the agent until it is signalled to stop.
func Run(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("daemon", usage, stderr)
	verbose := fs.Bool("verbose", false, "log every step")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("daemon takes no arguments")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if os.Geteuid() != 0 {
		log.Warn("not running as root: mounting revisions will fail")
	}
	d, err := Start(log)
	if err != nil {
		return err
	}
	log.Info("paddock agent started", "root", dirs.Root, "socket", dirs.SocketPath)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("stopping", "signal", s.String())
	if err := d.Stop(); err != nil {
		return fmt.Errorf("cannot stop cleanly: %w", err)
	}
	return nil
}
