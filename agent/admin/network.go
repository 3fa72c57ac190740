package admin

import (
	"fmt"
	"io"
	"strings"
	"time"

	"paddock.dev/paddock/internal/cli"
)

const networkUsage = `Usage: paddock network [--json]

Shows what the agent did to bring the appliance's network up: each
interface, its method (dhcp or static), address, gateway and name servers,
when its DHCP lease ends, and the last error with when the agent tries
again. agent.yaml's network section says what to do, for example:

  network: {eth0: dhcp}
  network: {eth0: {address: 192.168.1.20/24, gateway: 192.168.1.1, dns: [192.168.1.1]}}
  network: none

Without it the agent runs DHCP on every wired ethernet interface. It does
so only in the appliance (started by paddock init), never on a developer's host.`

// Network prints the agent's network status.
func Network(args []string, stdout, stderr io.Writer) error {
	c := newCommand("network", networkUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("network takes no arguments")
	}
	st, err := c.client().Network()
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, st)
	}
	if !st.Managed {
		fmt.Fprintf(stdout, "the agent leaves the network alone: %s\n", st.Why)
		return nil
	}
	var rows [][]string
	for _, i := range st.Interfaces {
		state := "up"
		switch {
		case i.Error != "":
			state = fmt.Sprintf("%s (again at %s)", i.Error, clock(i.Retry))
		case i.Address == "":
			state = "waiting"
		}
		lease := "-"
		if !i.LeaseExpiry.IsZero() {
			lease = "until " + clock(i.LeaseExpiry)
		}
		rows = append(rows, []string{i.Name, i.Method, dash(i.Address), dash(i.Gateway), dash(strings.Join(i.DNS, ",")), lease, state})
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "No interfaces to bring up.")
		return nil
	}
	return table(stdout, "Interface\tMethod\tAddress\tGateway\tDNS\tLease\tState", rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("Jan 2 15:04:05")
}
