package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/cli"
)

const servicesUsage = `Usage: paddock services [--json] [APP]

Lists the services (the commands that apps declare with daemon:) of every
app, or of APP: their state, main process, restarts and how they last
ended. A service "waiting" failed and restarts at the time shown, after a
delay that grows while it keeps failing; "crash loop" says it failed soon
after each of its last starts.

Examples:
  paddock services
  paddock services ticker --json`

// Services runs 'paddock services'.
func Services(args []string, stdout, stderr io.Writer) error {
	c := newCommand("services", servicesUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return cli.UsageError("services takes at most one app name")
	}
	app := ""
	if len(pos) == 1 {
		app = pos[0]
	}
	svcs, err := c.client().Services(app)
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, svcs)
	}
	if len(svcs) == 0 {
		fmt.Fprintln(stdout, "No services (an app declares one with daemon: in its app.yaml).")
		return nil
	}
	var rows [][]string
	for _, s := range svcs {
		rows = append(rows, []string{s.App + "." + s.Service, serviceState(s), pidText(s.PID), strconv.Itoa(s.Restarts), exitText(s.LastExit), serviceNotes(s)})
	}
	return table(stdout, "Service\tState\tPID\tRestarts\tLast exit\tNotes", rows)
}

func serviceState(s apitypes.ServiceInfo) string {
	st := s.State
	if !s.Enabled {
		st += " (disabled)"
	}
	return st + " since " + s.Since.Local().Format("15:04:05")
}

func pidText(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

func exitText(e *apitypes.ServiceExit) string {
	switch {
	case e == nil:
		return "-"
	case e.Code < 0:
		return "unknown"
	case e.Code > 128:
		return fmt.Sprintf("%d (signal %d)", e.Code, e.Code-128)
	}
	return strconv.Itoa(e.Code)
}

func serviceNotes(s apitypes.ServiceInfo) string {
	var notes []string
	if s.CrashLoop {
		notes = append(notes, "crash loop")
	}
	if !s.NextRestart.IsZero() {
		notes = append(notes, "restarts at "+s.NextRestart.Local().Format("15:04:05.000"))
	}
	if s.Message != "" {
		notes = append(notes, s.Message)
	}
	if h := s.AppHealth; h != nil {
		notes = append(notes, "app health "+healthLine(h))
	}
	return strings.Join(notes, "; ")
}

const startUsage = `Usage: paddock start [--json] [--no-wait] APP[.SVC]

Starts the services of APP (or only SVC) and enables them again after
'paddock stop': they start at every boot and agent start from then on.

Examples:
  paddock start ticker
  paddock start ticker.tick`

const stopUsage = `Usage: paddock stop [--json] [--no-wait] APP[.SVC]

Stops the services of APP (or only SVC): SIGTERM to each one's process
group, then SIGKILL after its stop-timeout (10s unless app.yaml says).
They stay stopped, across agent restarts and boots, until 'paddock start'.

Examples:
  paddock stop ticker
  paddock stop ticker.tick --json`

const restartUsage = `Usage: paddock restart [--json] [--no-wait] APP[.SVC]

Stops, then starts the services of APP (or only SVC), enabling them.

Example:
  paddock restart ticker`

// Start runs 'paddock start'.
func Start(args []string, stdout, stderr io.Writer) error {
	return servicesChange("start", startUsage, args, stdout, stderr)
}

// Stop runs 'paddock stop'.
func Stop(args []string, stdout, stderr io.Writer) error {
	return servicesChange("stop", stopUsage, args, stdout, stderr)
}

// Restart runs 'paddock restart'.
func Restart(args []string, stdout, stderr io.Writer) error {
	return servicesChange("restart", restartUsage, args, stdout, stderr)
}

var pastTense = map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}

func servicesChange(verb, usage string, args []string, stdout, stderr io.Writer) error {
	c, target, ci, err := oneChange(verb, usage, "one service, APP or APP.SVC", args, stdout, stderr,
		func(cl *client.Client, target string) (string, error) { return cl.ServicesAction(verb, target) })
	if err != nil || ci == nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, ci)
	}
	if ci.Status != "Done" {
		return fmt.Errorf("cannot %s %s: %s", verb, target, ci.Err)
	}
	fmt.Fprintf(stdout, "%s %s\n", target, pastTense[verb])
	if verb == "stop" {
		fmt.Fprintf(stdout, "It stays stopped, across restarts and boots, until 'paddock start %s'.\n", target)
	}
	return nil
}

const logsUsage = `Usage: paddock logs [--json] [-n N] [-f] APP[.SVC]

Prints the last N lines (default 10; 0 for all) of the logs of APP's
services (or only SVC's), each with its time; -f then prints new lines as
they come, until interrupted. Logs are kept in
/var/lib/paddock/logs/APP/SVC.log (root only), 2 files of 1 MiB each per
service; a service that writes faster than 64 KiB/s has lines dropped, and
the log says how many. Needs root.

Examples:
  paddock logs ticker
  paddock logs ticker.tick -n 100
  paddock logs ticker -f --json`

// Logs runs 'paddock logs'.
func Logs(args []string, stdout, stderr io.Writer) error {
	c := newCommand("logs", logsUsage, stderr, false)
	n := c.fs.Int("n", 10, "how many of the last lines to print (0: all)")
	follow := c.fs.Bool("f", false, "print new lines as they come")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("logs takes one service, APP or APP.SVC")
	}
	if *n < 0 {
		return cli.UsageError("-n takes a number of lines, 0 or more")
	}
	print := func(l apitypes.LogLine) error {
		if *c.json {
			// One object per line, as it comes.
			b, _ := json.Marshal(l)
			_, err := fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintf(stdout, "%s %s %s\n", l.Time.Local().Format(time.DateTime+".000"), l.Service, l.Text)
		return err
	}
	if *follow {
		return c.client().FollowLogs(pos[0], *n, print)
	}
	lines, err := c.client().Logs(pos[0], *n)
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, lines)
	}
	for _, l := range lines {
		if err := print(l); err != nil {
			return err
		}
	}
	return nil
}
