package ctl

import (
	"io"

	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/dirs"
)

const usage = `Usage: paddock ctl health okay|waiting|error [MESSAGE]
       paddock ctl config get [--json] [KEY...]

Talks to the agent from inside an app's sandbox, through the in-app
socket /run/paddock-ctl.sock. The agent knows which app calls by the
caller's user and cgroup: an app speaks only for itself, and root or a
process outside an app's sandbox is refused.

  health    says how the app is doing: okay, waiting (starting up, busy)
            or error, with a one-line message; 'paddock list', 'info' and
            the fleet state show it, and a refresh waits for okay
  config    prints the app's configuration ('paddock config set' as root),
            the keys asked for or all of it, one KEY=VALUE a line

Examples:
  paddock ctl health waiting "loading the model"
  paddock ctl health okay
  paddock ctl config get port`

// Command runs 'paddock ctl'.
func Command(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ctl", usage, stderr)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cli.UsageError("ctl takes a subcommand: health or config")
	}
	c := client.New(dirs.CtlSocketPath)
	switch pos[0] {
	case "health":
		if len(pos) < 2 || len(pos) > 3 {
			return cli.UsageError("ctl health takes a status (okay, waiting or error) and an optional message")
		}
		msg := ""
		if len(pos) == 3 {
			msg = pos[2]
		}
		if err := c.SetHealth(pos[1], msg); err != nil {
			return err
		}
		if *asJSON {
			return cli.WriteJSON(stdout, map[string]string{"status": pos[1], "message": msg})
		}
		return nil
	case "config":
		if len(pos) < 2 || pos[1] != "get" {
			return cli.UsageError("ctl config takes get [KEY...]")
		}
		cfg, err := c.AppConfig(pos[2:])
		if err != nil {
			return err
		}
		if *asJSON {
			return cli.WriteJSON(stdout, cfg)
		}
		return cli.WriteKeyValues(stdout, cfg)
	}
	return cli.UsageError("unknown ctl subcommand %q (want health or config)", pos[0])
}
