package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/internal/cli"
)

const baseUsage = `Usage: paddock base update FILE|URL... [--assert FILE] [--reboot now|never|HH:MM-HH:MM] [--json] [--no-wait]
       paddock base status [--json]

'base update' writes a new base into the slot the device does not run, and
tries it after a reboot. FILE is a slot image on the device ('paddock image
base'), or URL... its mirrors over HTTP(S); its signed base-revision is
read from --assert (default FILE.assert, or the first URL's .assert
downloaded beside it by you). The agent checks the signature against the
device's trusted root keys, the architecture and that the revision is not
lower than the running base's; it marks the other slot not bootable,
streams the image into it checking every chunk (chunks the running slot
already holds are copied, not downloaded; an interrupted update resumes
from the last verified chunk), reads it back, and makes the next boot try
it. --reboot now (the default) reboots at once, never leaves it to the next
reboot, and HH:MM-HH:MM reboots in that daily window (UTC). In the tried
boot the agent commits the slot once the device is healthy; otherwise the
device goes back to the old slot and the update ends with "rolled back:
REASON". The running slot is never written, and no update starts while a
tried base has not committed.

'base status' shows the slots: which one runs, each one's base and state
(good, try, trying, writing, bad), whether the running base is checked by
dm-verity, the last try of a base, why it failed (dm-verity refused the
slot, its init or kernel died or hung, its agent was not ready, or the device
was unhealthy in the window of the base's agent.yaml, base: health-window)
and what to do about it.

Examples:
    paddock base update /data/base-2.img
    paddock base update https://mirror.example/base-2.img --assert base-2.img.assert --reboot 02:00-04:00
    paddock base status --json`

// Base runs 'paddock base update|status'.
func Base(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.UsageError("base takes a subcommand: update or status")
	}
	switch args[0] {
	case "update":
		return baseUpdate(args[1:], stdout, stderr)
	case "status":
		return baseStatus(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, baseUsage)
		return nil
	}
	return cli.UsageError("unknown base subcommand %q (want update or status)", args[0])
}

func baseUpdate(args []string, stdout, stderr io.Writer) error {
	c := newCommand("base update", baseUsage, stderr, true)
	assertFile := c.fs.String("assert", "", "the base-revision bundle `FILE` (default: the image's FILE.assert)")
	reboot := c.fs.String("reboot", "now", "when to reboot into the new base: now, never, or a daily UTC window `HH:MM-HH:MM`")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cli.UsageError("base update takes a slot image FILE or its URLs")
	}
	req := apitypes.BaseUpdateRequest{Reboot: *reboot}
	if strings.HasPrefix(pos[0], "http://") || strings.HasPrefix(pos[0], "https://") {
		req.URLs = pos
		if *assertFile == "" {
			return cli.UsageError("base update from URLs needs --assert FILE (the image's .assert)")
		}
	} else {
		if len(pos) > 1 {
			return cli.UsageError("base update takes one FILE")
		}
		if req.File, err = filepath.Abs(pos[0]); err != nil {
			return err
		}
		if *assertFile == "" {
			*assertFile = pos[0] + ".assert"
		}
	}
	data, err := os.ReadFile(*assertFile)
	if err != nil {
		return fmt.Errorf("cannot read the base's assertions: %w (give --assert FILE, from 'paddock image base --key')", err)
	}
	req.Assertions = string(data)
	id, err := c.client().BaseUpdate(req)
	if err != nil {
		return err
	}
	if *c.noWait {
		_, _, err := c.wait(id, stdout, stderr)
		return err
	}
	return c.followBaseUpdate(id, *reboot, stdout, stderr)
}

// followBaseUpdate prints the steps of the update until the slot is set
// to try (the reboot comes next) or the change fails.
func (c *command) followBaseUpdate(id, reboot string, stdout, stderr io.Writer) error {
	printed := map[string]bool{}
	for {
		ci, err := c.client().Change(id)
		if err != nil {
			return err
		}
		tried := false
		for _, t := range ci.Tasks {
			if (t.Status == "Done" || t.Status == "Error") && !printed[t.ID] {
				printed[t.ID] = true
				if !*c.json {
					fmt.Fprintf(stderr, "%-7s %s\n", strings.ToLower(t.Status), t.Summary)
				}
			}
			if t.Kind == "set-try" && t.Status == "Done" {
				tried = true
			}
		}
		if ci.Err != "" {
			return errors.New(ci.Err)
		}
		if tried || ci.Ready {
			if *c.json {
				return cli.WriteJSON(stdout, map[string]any{"change": id, "status": ci.Status, "reboot": reboot})
			}
			switch reboot {
			case "now":
				fmt.Fprintf(stdout, "base written and verified: rebooting to try it (see 'paddock base status' and 'paddock changes %s' after the boot)\n", id)
			case "never":
				fmt.Fprintf(stdout, "base written and verified: the next reboot tries it (change %s)\n", id)
			default:
				fmt.Fprintf(stdout, "base written and verified: the device reboots to try it in the window %s UTC (change %s)\n", reboot, id)
			}
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func baseStatus(args []string, stdout, stderr io.Writer) error {
	c := newCommand("base status", baseUsage, stderr, false)
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("base status takes no arguments")
	}
	st, err := c.client().BaseStatus()
	if err != nil {
		return err
	}
	if *c.json {
		return cli.WriteJSON(stdout, st)
	}
	var rows [][]string
	for _, s := range st.Slots {
		running, base := "", "-"
		if s.Running {
			running = "*"
		}
		if s.Base != "" {
			base = fmt.Sprintf("%s %s (revision %d)", s.Base, s.Version, s.Revision)
		}
		state := s.State
		if s.Why != "" {
			state += ": " + s.Why
		}
		rows = append(rows, []string{s.Name, running, base, state})
	}
	if err := table(stdout, "Slot\tRunning\tBase\tState", rows); err != nil {
		return err
	}
	verified := "yes (dm-verity)"
	if !st.Verified {
		verified = "no"
		if st.Unverified != "" {
			verified += ": " + st.Unverified
		}
	}
	fmt.Fprintf(stdout, "verified: %s\n", verified)
	if st.Fallback != "" {
		fmt.Fprintf(stdout, "fallback: %s\n", st.Fallback)
	}
	if st.Last.Slot != "" {
		line := fmt.Sprintf("last try: slot %s %s after %d boot(s)", st.Last.Slot, st.Last.Result, st.Last.Boots)
		if st.Last.Reason != "" {
			line += ": " + st.Last.Reason
		}
		fmt.Fprintln(stdout, line)
		if st.Last.Advice != "" {
			fmt.Fprintf(stdout, "what to do: %s\n", st.Last.Advice)
		}
	}
	return nil
}
