package admin

import (
	"fmt"
	"io"

	"paddock.dev/paddock/internal/cli"
)

const changesUsage = `Usage: paddock changes [--json] [--in-progress] [ID]

Lists the recent changes (installs, refreshes, reverts, removals) with their
status, or with an ID the tasks of one change and their logs.`

// Changes runs 'paddock changes'.
func Changes(args []string, stdout, stderr io.Writer) error {
	c := newCommand("changes", changesUsage, stderr, false)
	inProgress := c.fs.Bool("in-progress", false, "list only changes that have not finished")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return cli.UsageError("changes takes at most one change id")
	}
	if len(pos) == 1 {
		ci, err := c.client().Change(pos[0])
		if err != nil {
			return err
		}
		if *c.json {
			return cli.WriteJSON(stdout, ci)
		}
		var rows [][]string
		for _, t := range ci.Tasks {
			rows = append(rows, []string{t.Status, t.Summary})
			for _, l := range t.Log {
				rows = append(rows, []string{"", "  " + l})
			}
		}
		return table(stdout, "Status\tTask", rows)
	}
	chgs, err := c.client().Changes(*inProgress)
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, chgs)
	}
	if len(chgs) == 0 {
		fmt.Fprintln(stdout, "No changes.")
		return nil
	}
	var rows [][]string
	for _, ch := range chgs {
		ready := ""
		if ch.ReadyTime != nil {
			ready = ch.ReadyTime.Local().Format("2006-01-02 15:04:05")
		}
		rows = append(rows, []string{ch.ID, ch.Status, ch.SpawnTime.Local().Format("2006-01-02 15:04:05"), ready, ch.Summary})
	}
	return table(stdout, "ID\tStatus\tSpawn\tReady\tSummary", rows)
}
