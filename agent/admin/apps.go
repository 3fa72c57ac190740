package admin

import (
	"fmt"
	"io"
	"strconv"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/cli"
)

const installUsage = `Usage: paddock install [--assert FILE] [--json] [--no-wait] FILE.pdk

Installs a signed app package on this device, or refreshes the app when an
older revision of it is installed. The package is checked against its
assertions (FILE.pdk.assert by default, as written by 'paddock sign'): the
signature must lead to a trusted root key, and the size and sha256 must
match while the file streams in, before anything is mounted.

Example:
  paddock install hello.pdk`

const refreshUsage = `Usage: paddock refresh [--assert FILE] [--json] [--no-wait] FILE.pdk

Refreshes an installed app to the newer revision in FILE.pdk. Its data is
carried forward; the previous revision and its data are kept, so that
'paddock revert NAME' can go back. Its connections are kept; a plug it
adds connects only when its interface connects by itself (a hardware plug
waits for 'paddock connect'). --dry-run lists the plugs it would add or
remove, and changes nothing.

Example:
  paddock refresh --dry-run hello_2.pdk
  paddock refresh hello_2.pdk`

// Install runs 'paddock install'.
func Install(args []string, stdout, stderr io.Writer) error {
	return install("install", installUsage, false, args, stdout, stderr)
}

// Refresh runs 'paddock refresh'.
func Refresh(args []string, stdout, stderr io.Writer) error {
	return install("refresh", refreshUsage, true, args, stdout, stderr)
}

func install(name, usage string, refresh bool, args []string, stdout, stderr io.Writer) error {
	c := newCommand(name, usage, stderr, true)
	assert := c.fs.String("assert", "", "the assertions of the package (default FILE.pdk.assert)")
	dry := c.fs.Bool("dry-run", false, "change nothing: list the plugs the package adds or removes, and whether each new one would connect")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("%s takes one package file", name)
	}
	pdk := pos[0]
	if *dry {
		return dryRun(c, pdk, stdout)
	}
	if *assert == "" {
		*assert = pdk + ".assert"
	}
	id, err := c.client().Install(pdk, *assert, refresh)
	if err != nil {
		return err
	}
	ci, err := c.follow(name, pdk, id, stdout, stderr)
	if err != nil || ci == nil {
		return err
	}
	return printAppOfChange(c, *ci, stdout)
}

// printAppOfChange prints the app a finished change worked on, named by
// the change's data.
func printAppOfChange(c *command, ci apitypes.ChangeInfo, stdout io.Writer) error {
	if ci.App == "" {
		return fmt.Errorf("internal error: change %s names no app", ci.ID)
	}
	info, err := c.client().App(ci.App)
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, info)
	}
	fmt.Fprintf(stdout, "%s %s (revision %d) from %s is current\n", info.Name, info.Version, info.Revision, info.Publisher)
	return nil
}

const revertUsage = `Usage: paddock revert [--json] [--no-wait] NAME

Switches the app back to the previous revision kept on the device, and to
that revision's data (data written by the newer revision stays with it).`

// Revert runs 'paddock revert'.
func Revert(args []string, stdout, stderr io.Writer) error {
	c, _, ci, err := appChange("revert", revertUsage, args, stdout, stderr, (*client.Client).Revert)
	if err != nil || ci == nil {
		return err
	}
	return printAppOfChange(c, *ci, stdout)
}

const removeUsage = `Usage: paddock remove [--json] [--no-wait] NAME

Removes the app: every kept revision, its package files and all its data.`

// Remove runs 'paddock remove'.
func Remove(args []string, stdout, stderr io.Writer) error {
	c, name, ci, err := appChange("remove", removeUsage, args, stdout, stderr, (*client.Client).Remove)
	if err != nil || ci == nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, ci)
	}
	fmt.Fprintf(stdout, "%s removed\n", name)
	return nil
}

// appChange runs a command that starts a change of one app (named by the
// only argument) and follows it; ci is nil when --no-wait returned early.
func appChange(verb, usage string, args []string, stdout, stderr io.Writer, start func(*client.Client, string) (string, error)) (*command, string, *apitypes.ChangeInfo, error) {
	return oneChange(verb, usage, "one app name", args, stdout, stderr, start)
}

// oneChange runs a command that starts a change of one thing, named by the
// only argument (what says which kind, in the usage error), and follows
// it; ci is nil when --no-wait returned early.
func oneChange(verb, usage, what string, args []string, stdout, stderr io.Writer, start func(*client.Client, string) (string, error)) (*command, string, *apitypes.ChangeInfo, error) {
	c := newCommand(verb, usage, stderr, true)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return nil, "", nil, err
	}
	if len(pos) != 1 {
		return nil, "", nil, cli.UsageError("%s takes %s", verb, what)
	}
	id, err := start(c.client(), pos[0])
	if err != nil {
		return nil, "", nil, err
	}
	ci, err := c.follow(verb, pos[0], id, stdout, stderr)
	return c, pos[0], ci, err
}

const listUsage = `Usage: paddock list [--json]

Lists the installed apps with their current version and revision, and their
health where something judges it (a probe, a hook, the app, a crash loop).`

// List runs 'paddock list'.
func List(args []string, stdout, stderr io.Writer) error {
	c := newCommand("list", listUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cli.UsageError("list takes no arguments")
	}
	apps, err := c.client().Apps()
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, apps)
	}
	if len(apps) == 0 {
		fmt.Fprintln(stdout, "No apps are installed (install one with 'paddock install FILE.pdk').")
		return nil
	}
	var rows [][]string
	for _, a := range apps {
		rows = append(rows, []string{a.Name, a.Version, strconv.Itoa(a.Revision), a.Publisher, healthWord(a.Health)})
	}
	return table(stdout, "Name\tVersion\tRev\tPublisher\tHealth", rows)
}

const infoUsage = `Usage: paddock info [--json] NAME

Shows an installed app: its current revision and every revision kept on the device.`

// Info runs 'paddock info'.
func Info(args []string, stdout, stderr io.Writer) error {
	c := newCommand("info", infoUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("info takes one app name")
	}
	info, err := c.client().App(pos[0])
	if err != nil {
		return err
	}
	plugs, err := c.client().Connections(info.Name)
	if err != nil {
		plugs = nil // the gadget, or an agent without interfaces
	}
	if *c.json {
		return cli.WriteJSON(stdout, infoWithPlugs{AppInfo: info, Plugs: plugs})
	}
	fmt.Fprintf(stdout, "name:      %s\nversion:   %s\nrevision:  %d\ntype:      %s\narch:      %s\npublisher: %s\nrevisions:\n",
		info.Name, info.Version, info.Revision, info.Type, info.Arch, info.Publisher)
	if h := info.Health; h != nil {
		fmt.Fprintf(stdout, "health:    %s\n", healthLine(h))
	}
	for _, r := range info.Revisions {
		mark := " "
		if r.Revision == info.Revision {
			mark = "*"
		}
		fmt.Fprintf(stdout, "  %s %d  %s  %s  %d bytes  sha256 %s\n", mark, r.Revision, r.Version, r.Installed.Format("2006-01-02 15:04"), r.Size, r.SHA256[:min(16, len(r.SHA256))])
	}
	printPlugs(stdout, plugs)
	return nil
}

// healthWord is an app's health in a table: its status, or "-" when
// nothing judges it.
func healthWord(h *apitypes.AppHealth) string {
	if h == nil {
		return "-"
	}
	return h.Status
}

// healthLine is an app's health on one line: status, source, since when
// and why.
func healthLine(h *apitypes.AppHealth) string {
	s := h.Status
	if h.Source != "" {
		s += " (" + h.Source
		if !h.Since.IsZero() {
			s += ", since " + h.Since.Local().Format("2006-01-02 15:04:05")
		}
		s += ")"
	}
	if h.Message != "" {
		s += ": " + h.Message
	}
	return s
}
