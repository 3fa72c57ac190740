package fleet

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"paddock.dev/paddock/internal/cli"
)

const devicesUsage = `
Usage: paddock fleet devices --broker URL [--group G] [--wait 2s] [--json]

Devices lists the devices that report to the broker, from their retained
state and presence messages: whether each is online, its active base slot,
its apps (name=revision), its health (with the answers it dropped while
its broker was out of reach) and the time of its last state.
The broker sends the retained messages at once; the listing waits until
they stop arriving, or at most --wait.
`

// Devices is 'paddock fleet devices'.
func Devices(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("fleet devices", devicesUsage, stdout)
	broker := brokerFlag(fs)
	group := fs.String("group", "", "list only the devices of `GROUP`")
	wait := fs.Duration("wait", 2*time.Second, "wait at most `DURATION` for the devices' retained messages")
	asJSON := fs.Bool("json", false, "print the devices as JSON")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("fleet devices takes no arguments besides its options")
	}
	if err := needBroker("fleet devices", *broker); err != nil {
		return err
	}
	l, err := dial(*broker, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	r := newRegistry()
	if err := r.collect(l, *wait, true); err != nil {
		return err
	}
	list := r.devices(*group)
	if *asJSON {
		return cli.WriteJSON(stdout, list)
	}
	return writeDevices(stdout, list)
}

// writeDevices prints the devices as a table. Everything a device
// reports is passed through cli.Printable: a forged retained state must
// not drive the operator's terminal.
func writeDevices(w io.Writer, list []DeviceInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tONLINE\tBASE\tAPPS\tHEALTH\tLAST SEEN")
	for _, d := range list {
		online := "-"
		if d.Presence {
			online = map[bool]string{true: "yes", false: "no"}[d.Online]
		}
		apps := make([]string, len(d.Apps))
		for i, a := range d.Apps {
			apps[i] = fmt.Sprintf("%s=%d", a.Name, a.Revision) // the name is escaped with the column
		}
		seen := "-"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.UTC().Format(time.RFC3339)
		}
		health := d.Health
		problems := d.Problems
		if d.RefusalsDropped > 0 {
			problems = append(problems[:len(problems):len(problems)], fmt.Sprintf("%d refusals dropped", d.RefusalsDropped))
		}
		if d.AnswersDropped > 0 {
			problems = append(problems[:len(problems):len(problems)], fmt.Sprintf("%d answers dropped", d.AnswersDropped))
		}
		if len(problems) > 0 {
			health += " (" + strings.Join(problems, "; ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cli.Printable(d.ID), online, dash(d.BaseSlot), dash(strings.Join(apps, ",")), dash(health), seen)
	}
	return tw.Flush()
}

// dash makes a device's text printable, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return cli.Printable(s)
}
