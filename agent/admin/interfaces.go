package admin

import (
	"fmt"
	"io"
	"strings"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/cli"
)

const connectUsage = `Usage: paddock connect [--json] [--no-wait] APP:PLUG [SLOT]

Connects the plug PLUG of the installed app APP to a slot, as a change
(see 'paddock changes'): the app's security profiles are generated again
with what the plug's interface grants, and its next launch has it. A
hardware plug (serial-port, i2c, spi, gpio, pwm, custom-device) connects
to a slot of the device's gadget; other plugs to the system's slot of
their interface (:network-control). Without SLOT, the only slot that fits
is taken; when the gadget has several, they are listed.

Examples:
  paddock connect sensor:serial-port            # the gadget's only serial port
  paddock connect sensor:serial-port serial1
  paddock connections sensor                    # what is connected now`

// Connect runs 'paddock connect'.
func Connect(args []string, stdout, stderr io.Writer) error {
	c := newCommand("connect", connectUsage, stderr, true)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return cli.UsageError("connect takes APP:PLUG and an optional SLOT")
	}
	slot := ""
	if len(pos) == 2 {
		slot = pos[1]
	}
	id, err := c.client().Connect(pos[0], slot)
	if err != nil {
		return err
	}
	return c.followConnection("connect", pos[0], id, stdout, stderr)
}

const disconnectUsage = `Usage: paddock disconnect [--json] [--no-wait] APP:PLUG

Disconnects the plug PLUG of the app APP from its slot, as a change: the
app's security profiles are generated again without the interface. A plug
that connected by itself (auto) or through the gadget stays disconnected,
until 'paddock connect' connects it again.

Example:
  paddock disconnect sensor:serial-port`

// Disconnect runs 'paddock disconnect'.
func Disconnect(args []string, stdout, stderr io.Writer) error {
	c := newCommand("disconnect", disconnectUsage, stderr, true)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.UsageError("disconnect takes one APP:PLUG")
	}
	id, err := c.client().Disconnect(pos[0])
	if err != nil {
		return err
	}
	return c.followConnection("disconnect", pos[0], id, stdout, stderr)
}

// followConnection waits for the change id of a connect or disconnect of
// plug, then prints the plug as it is now.
func (c *command) followConnection(verb, plug, id string, stdout, stderr io.Writer) error {
	ci, err := c.follow(verb, plug, id, stdout, stderr)
	if err != nil || ci == nil {
		return err
	}
	app, _, _ := strings.Cut(plug, ":")
	conns, err := c.client().Connections(app)
	if err != nil {
		return err
	}
	for _, p := range conns {
		if p.Plug != plug {
			continue
		}
		if *c.json {
			return cli.WriteJSON(stdout, map[string]any{"change": ci.ID, "connection": p})
		}
		if p.Slot == "" {
			fmt.Fprintf(stdout, "%s is disconnected\n", plug)
		} else {
			fmt.Fprintf(stdout, "%s is connected to %s\n", plug, p.Slot)
		}
		return nil
	}
	return fmt.Errorf("internal error: %s is not among the plugs of %s", plug, app)
}

const connectionsUsage = `Usage: paddock connections [--json] [APP]

Lists the plugs of the installed apps (of APP only), with the slot each is
connected to and who connected it (auto, gadget, operator). A plug without
a slot is not connected: a hardware plug waits for 'paddock connect'.

Example:
  paddock connections
  Interface    Plug               Slot      Notes
  network      sensor:network     :network  auto
  serial-port  sensor:serial-port -         waits for an operator ('paddock connect sensor:serial-port')`

// Connections runs 'paddock connections'.
func Connections(args []string, stdout, stderr io.Writer) error {
	c := newCommand("connections", connectionsUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return cli.UsageError("connections takes at most one app name")
	}
	app := ""
	if len(pos) == 1 {
		app = pos[0]
	}
	conns, err := c.client().Connections(app)
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, conns)
	}
	if len(conns) == 0 {
		fmt.Fprintln(stdout, "No plugs: no installed app declares one.")
		return nil
	}
	var rows [][]string
	for _, p := range conns {
		rows = append(rows, []string{p.Interface, p.Plug, or(p.Slot, "-"), or(notes(p), "-")})
	}
	return table(stdout, "Interface\tPlug\tSlot\tNotes", rows)
}

// notes says who connected a plug, and what its notes say.
func notes(p apitypes.ConnectionInfo) string {
	var out []string
	if p.By != "" {
		out = append(out, p.By)
	}
	return strings.Join(append(out, p.Notes...), "; ")
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

const interfacesUsage = `Usage: paddock interfaces [--json]

Lists the interfaces an app's plugs may name: what a connected plug of
each grants its sandbox, whether it connects by itself at install (auto),
and the slots of the device's gadget that hardware plugs connect to.

Example:
  paddock interfaces
  paddock connect sensor:serial-port serial1   # then connect a plug to a slot`

// Interfaces runs 'paddock interfaces'.
func Interfaces(args []string, stdout, stderr io.Writer) error {
	c := newCommand("interfaces", interfacesUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cli.UsageError("interfaces takes no arguments")
	}
	ifaces, err := c.client().Interfaces()
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, ifaces)
	}
	var rows [][]string
	for _, i := range ifaces {
		conn := "operator"
		switch {
		case i.AutoConnect:
			conn = "auto"
		case i.Hardware:
			conn = "gadget, operator"
		}
		rows = append(rows, []string{i.Name, conn, or(strings.Join(i.Slots, ","), "-"), i.Summary, or(strings.Join(i.Grants, "; "), "-")})
	}
	return table(stdout, "Interface\tConnects\tSlots\tSummary\tGrants", rows)
}
