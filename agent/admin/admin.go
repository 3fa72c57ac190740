// Package admin holds the device admin commands of the paddock binary
// (install, refresh, revert, remove, list, info, changes): thin clients of
// the agent's API that print for people, or JSON with --json.
package admin

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/cli"
)

// newClient is swapped by tests.
var newClient = func() *client.Client { return client.New("") }

// command parses the common flags of an admin command: --json, and
// --no-wait for those that start a change.
type command struct {
	fs     *flag.FlagSet
	json   *bool
	noWait *bool
	stderr io.Writer
	warned bool
}

func newCommand(name, usage string, stderr io.Writer, async bool) *command {
	c := &command{fs: cli.NewFlagSet(name, usage, stderr), stderr: stderr}
	c.json = c.fs.Bool("json", false, "print JSON for scripts")
	if async {
		c.noWait = c.fs.Bool("no-wait", false, "print the change id and return without waiting for it")
	}
	return c
}

// client returns a client of the agent that warns on stderr, once per
// command, when the agent says it is degraded.
func (c *command) client() *client.Client {
	cl := newClient()
	cl.OnDegraded = func(d apitypes.Degraded) {
		if !c.warned {
			c.warned = true
			fmt.Fprintf(c.stderr, "warning: the paddock agent is degraded since %s: %s\n", d.Since.Local().Format("2006-01-02 15:04:05"), d.Reason)
		}
	}
	return cl
}

// wait follows the change id to its end, printing each finished step to
// stderr (unless --json), and returns its final state.
func (c *command) wait(id string, stdout, stderr io.Writer) (apitypes.ChangeInfo, bool, error) {
	if c.noWait != nil && *c.noWait {
		if *c.json {
			return apitypes.ChangeInfo{}, false, cli.WriteJSON(stdout, map[string]string{"change": id})
		}
		fmt.Fprintln(stdout, id)
		return apitypes.ChangeInfo{}, false, nil
	}
	printed := map[string]bool{}
	ci, err := c.client().Wait(id, func(ci apitypes.ChangeInfo) {
		if *c.json {
			return
		}
		for _, t := range ci.Tasks {
			if (t.Status == "Done" || t.Status == "Undone" || t.Status == "Error") && !printed[t.ID+t.Status] {
				printed[t.ID+t.Status] = true
				fmt.Fprintf(stderr, "%-7s %s\n", strings.ToLower(t.Status), t.Summary)
			}
		}
	})
	return ci, true, err
}

// follow waits for the change id that does verb to what (see wait), and
// says what failed: "cannot VERB WHAT: why". ci is nil when --no-wait
// returned early.
func (c *command) follow(verb, what, id string, stdout, stderr io.Writer) (*apitypes.ChangeInfo, error) {
	ci, waited, err := c.wait(id, stdout, stderr)
	if !waited {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("cannot %s %s: %w", verb, what, err)
	}
	return &ci, nil
}

// table writes rows aligned in columns.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
