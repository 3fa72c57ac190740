package admin

import (
	"fmt"
	"io"
	"strings"

	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/internal/cli"
)

const configUsage = `Usage: paddock config get [--json] APP [KEY...]
       paddock config set [--json] [--no-wait] APP KEY=VALUE...

Reads or sets an app's configuration: flat keys (lowercase letters, digits,
dashes, underscores) with JSON values. A VALUE that is valid JSON is taken
as such (8080, true, [1,2], "text"), anything else as text. Until set, a
key has the value the gadget's defaults: give it.

A set is a change: the app's configure hook runs first and sees the new
values ('paddock ctl config get' inside the app); if it fails, the change
is refused and the old values stay. The app reads its configuration with
'paddock ctl config get'. Needs root.

Examples:
  paddock config set web port=8080 log-level=debug
  paddock config get web port`

// Config runs 'paddock config'.
func Config(args []string, stdout, stderr io.Writer) error {
	c := newCommand("config", configUsage, stderr, true)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return cli.UsageError("config takes get or set and an app name")
	}
	switch pos[0] {
	case "get":
		cfg, err := c.client().Config(pos[1], pos[2:])
		if err != nil {
			return err
		}
		if *c.json {
			return cli.WriteJSON(stdout, cfg)
		}
		return cli.WriteKeyValues(stdout, cfg)
	case "set":
		values, err := parseValues(pos[2:])
		if err != nil {
			return err
		}
		id, err := c.client().Configure(pos[1], values)
		if err != nil {
			return err
		}
		ci, waited, err := c.wait(id, stdout, stderr)
		if !waited {
			return err
		}
		if err != nil {
			return fmt.Errorf("cannot configure %s: %w (the old values stay)", pos[1], err)
		}
		if *c.json {
			return cli.WriteJSON(stdout, ci)
		}
		fmt.Fprintf(stdout, "%s configured\n", pos[1])
		return nil
	}
	return cli.UsageError("unknown config subcommand %q (want get or set)", pos[0])
}

// parseValues reads KEY=VALUE arguments.
func parseValues(args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, cli.UsageError("config set takes KEY=VALUE arguments")
	}
	values := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, cli.UsageError("%q is not KEY=VALUE", a)
		}
		if err := appmgr.CheckConfigKey(k); err != nil {
			return nil, err
		}
		values[k] = appmgr.ParseConfigValue(v)
	}
	return values, nil
}
