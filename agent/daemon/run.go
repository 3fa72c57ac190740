package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/notify"
)

const usage = `Usage: paddock daemon [--verbose] [--broker URL] [--device-id ID] [--group G]...

Runs the paddock agent: it serves the admin API on $PADDOCK_ROOT/run/paddock.sock,
runs changes (install, refresh, revert, remove) step by step, and at start
re-mounts installed revisions and resumes any change that a crash or power
cut interrupted. Stop it with SIGTERM or SIGINT.

With a broker (from the flags or $PADDOCK_ROOT/etc/paddock/agent.yaml), it
also keeps the fleet link: it takes signed commands over MQTT and reports
events and state. The flags override agent.yaml, for example:

  broker: ssl://mqtt.example.com:8883
  device-id: dev1
  groups: [lab, eu-west]
  tls: {ca: ca.pem, cert: device.pem, key: device.key}

Environment:
  PADDOCK_ROOT   the root directory of every path (default /)
  PADDOCK_FAULT  for crash tests: TASK:before|after makes the agent exit abruptly there
  PADDOCK_NOTIFY_FD  set by init: a descriptor to write "READY=1" to once the API serves`

// Run runs the agent until it is signalled to stop.
func Run(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("daemon", usage, stderr)
	verbose := fs.Bool("verbose", false, "log every step")
	broker := fs.String("broker", "", "the MQTT broker of the fleet link (tcp://HOST:PORT or ssl://HOST:PORT)")
	deviceID := fs.String("device-id", "", "the device's name in the fleet (default: agent.yaml, then the machine id)")
	var groups groupList
	fs.Var(&groups, "group", "a fleet group of the device (repeatable)")
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
	conf, err := config.Load()
	if err != nil {
		return err
	}
	if *broker != "" {
		conf.Brokers = []string{*broker}
	}
	if *deviceID != "" {
		conf.DeviceID = *deviceID
	}
	if len(groups) > 0 {
		conf.Groups = groups
	}
	if err := conf.Check(); err != nil {
		return cli.UsageError("%v", err)
	}
	// Before Start: a stop asked for as soon as the agent is ready must
	// find the handler in place, not kill the agent mid-change.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	d, err := Start(log, Options{Fleet: *conf})
	if err != nil {
		return err
	}
	// Ready first, then the log line: init waits for the one, not the other.
	if err := notify.SendReady(); err != nil {
		log.Warn("readiness", "err", err)
	}
	log.Info("paddock agent started", "root", dirs.Root, "socket", dirs.SocketPath)
	s := <-sig
	log.Info("stopping", "signal", s.String())
	if err := d.Stop(); err != nil {
		return fmt.Errorf("cannot stop cleanly: %w", err)
	}
	return nil
}

// groupList collects repeated --group flags.
type groupList []string

func (g *groupList) String() string     { return strings.Join(*g, ",") }
func (g *groupList) Set(v string) error { *g = append(*g, v); return nil }
