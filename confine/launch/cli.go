package launch

import (
	"fmt"
	"io"
	"strings"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/names"
)

const runUsage = `Usage: paddock run APP[.CMD] [-- ARGS...]

Runs command CMD of the installed app APP (the command named like the app
when CMD is left out) in its sandbox, with the terminal's input and output:

  - the app's revision read-only at $APP, its data writable at $APP_DATA and
    $APP_COMMON, a private /tmp, the base read-only, no other app's data;
  - its own mount, PID, IPC and UTS namespaces, and a network namespace with
    only loopback unless a network plug is declared;
  - the app's cgroup: a device allowlist (null, zero, full, random, urandom,
    tty, console, ptmx, pts and connected hardware) and its memory, pids and
    cpu limits;
  - the app's own user and group (from 70000), which own its data; root
    only for an app that asks for it (user: root) and whose publisher's
    delegation grants it;
  - no capabilities, no_new_privs, the seccomp filter compiled at install
    (denied calls fail with EPERM and are logged), and the AppArmor profile
    where the kernel has AppArmor.

All of it comes from the command's policy, which the agent resolved from
the app's plugs when it installed the app, and kept beside its profiles.

With --probe, it runs the health check command of CMD (apps.CMD.health.command
in app.yaml) in CMD's sandbox instead: the agent's health probes do.

The exit code is the command's (128+N when signal N ended it); 126 means the
sandbox could not be set up. Needs root.

Example:
  paddock run hello
  paddock run hello.greet -- --name world`

// RunCommand runs 'paddock run'.
func RunCommand(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("run", runUsage, stderr)
	probe := fs.Bool("probe", false, "run the command's health check instead of the command")
	// Everything after APP[.CMD] belongs to the app: parse flags only before it.
	var rest []string
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			args, rest = args[:i+1], args[i+1:]
			break
		}
	}
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("run takes an app command, like hello or hello.greet")
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	name, cmd, hasCmd := strings.Cut(pos[0], ".")
	if !names.Valid(name) || hasCmd && !names.Valid(cmd) {
		return fmt.Errorf("invalid app command %q (want APP or APP.CMD, names of lowercase letters and digits with single dashes between them, like hello or hello.greet)", pos[0])
	}
	spec, err := Resolve(name, cmd, rest)
	if err == nil && *probe {
		err = probeSpec(spec)
	}
	if err != nil {
		writeStatus(setupFailed)
		return err
	}
	code, err := Run(spec)
	if err != nil {
		writeStatus(setupFailed)
		return err
	}
	writeStatus(code)
	if code != 0 {
		return cli.ExitCode(code)
	}
	return nil
}
