package fleet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
)

const rolloutUsage = `
Usage: paddock fleet rollout ACTION [ARGS] --group G --broker URL --key NAME
                             --delegation FILE [--waves 1%,10%,50%,100%]
                             [--max-failures 2%] [--wait-healthy DURATION]
                             [--timeout 30m] [--expires 1h] [--json]
       paddock fleet rollout status [ID] [--json]
       paddock fleet rollout resume [ID] [--max-failures P%] [--broker URL]
       paddock fleet rollout abort [ID]

Rollout sends a command (ACTION as for 'paddock fleet send') to the devices
of group G in waves: the devices are those whose retained state lists G
at the start, sorted by ID, and the waves are cumulative percentages of
them (the first has at least one device). Each device gets a command of
its own; a wave ends when every device of it is done, has failed, or has
not answered within --timeout (and with --wait-healthy, once a done
device's state says its health is ok; a done device whose state says
degraded has failed at once, with the reasons it reports). When more
than --max-failures of the devices sent to so far have failed, the
rollout stops.

The rollout is kept in $PADDOCK_FLEET_DIR/rollouts/ID.json (default
~/.local/share/paddock/rollouts), so that 'status', 'resume' and 'abort'
work after the process is gone; they take the latest rollout without ID.
A resumed rollout sends no device a second command: devices that did not
answer get the same command again, which a device applies only once.
'resume' of a stopped rollout needs a higher --max-failures.
`

// Rollout is 'paddock fleet rollout'; an interrupt leaves it resumable.
func Rollout(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return rollout(ctx, args, stdout, stderr)
}

func rollout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return rolloutStatus(args[1:], stdout)
		case "resume":
			return rolloutResume(ctx, args[1:], stdout, stderr)
		case "abort":
			return rolloutAbort(args[1:], stdout)
		}
	}
	return rolloutStart(ctx, args, stdout, stderr)
}

type startOptions struct {
	sendOptions
	waves, maxFailures string
	waitHealthy        time.Duration
}

func parseRollout(args []string, stdout io.Writer) (*startOptions, error) {
	fs := cli.NewFlagSet("fleet rollout", rolloutUsage, stdout)
	o := &startOptions{}
	fs.StringVar(&o.broker, "broker", os.Getenv("PADDOCK_BROKER"), "the MQTT broker's `URL` (default $PADDOCK_BROKER)")
	fs.StringVar(&o.key, "key", "", "sign with the operator key `NAME` from the key store (required)")
	fs.StringVar(&o.delegation, "delegation", "", "the delegation of the operator key, in `FILE` (required)")
	fs.StringVar(&o.group, "group", "", "roll out to the devices of `GROUP` (required)")
	fs.StringVar(&o.waves, "waves", "1%,10%,50%,100%", "the cumulative `PERCENTAGES` of the devices in each wave")
	fs.StringVar(&o.maxFailures, "max-failures", "2%", "stop when more than `PERCENT` of the devices sent to have failed")
	fs.DurationVar(&o.waitHealthy, "wait-healthy", 0, "after done, wait up to `DURATION` for the device to report health ok")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "a device that has not answered `DURATION` after its wave was sent has failed")
	fs.DurationVar(&o.expires, "expires", time.Hour, "devices refuse a command `DURATION` after it was signed")
	fs.DurationVar(&o.wait, "wait", 2*time.Second, "wait at most `DURATION` for the retained states that name the group's devices")
	fs.BoolVar(&o.asJSON, "json", false, "print the rollout's status as JSON at the end")
	aopts := actionFlags(fs)
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if err := needBroker("fleet rollout", o.broker); err != nil {
		return nil, err
	}
	if o.key == "" || o.delegation == "" || o.group == "" {
		return nil, cli.UsageError("fleet rollout needs --group GROUP, --key NAME and --delegation FILE")
	}
	if o.expires <= 0 || o.timeout <= 0 || o.waitHealthy < 0 {
		return nil, cli.UsageError("--expires and --timeout must be positive")
	}
	if _, err := parseWaves(o.waves, 1); err != nil {
		return nil, cli.UsageError("%v", err)
	}
	if p, err := parsePercent(o.maxFailures); err != nil || !(p >= 0 && p <= 100) {
		return nil, cli.UsageError("--max-failures %q: want a percentage such as 2%%", o.maxFailures)
	}
	o.action, o.args, err = parseAction(pos, *aopts)
	return o, err
}

// rolloutStart starts a rollout: it fixes the devices and waves, saves the
// rollout, then runs it.
func rolloutStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRollout(args, stdout)
	if err != nil {
		return err
	}
	op, l, err := connectOperator(o.key, o.delegation, o.broker, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	reg := newRegistry()
	if err := reg.collect(l, o.wait, false); err != nil {
		return err
	}
	ids, forged := reg.group(o.group)
	warnForged(stderr, o.group, forged)
	if len(ids) == 0 {
		return fmt.Errorf("cannot roll out to group %s: no device reports it (see 'paddock fleet devices')", o.group)
	}
	st := newRolloutState(o, op, ids)
	path, err := rolloutPath(st.ID)
	if err != nil {
		return err
	}
	if err := st.save(path); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rollout %s: %s to %d devices of group %s in %d waves\n", st.ID, st.Action, len(ids), st.Group, len(st.Waves))
	r := newRunner(st, path, l, stdout, stderr)
	r.op = op
	return r.finish(r.run(ctx), o.asJSON)
}

func newRolloutState(o *startOptions, op *operator, ids []string) *rolloutState {
	waves, _ := parseWaves(o.waves, len(ids)) // checked by parseRollout
	maxFailures, _ := parsePercent(o.maxFailures)
	now := timeNow().UTC()
	st := &rolloutState{
		Version: rolloutVersion, ID: newRolloutID(), State: rolloutRunning, Created: now,
		Broker: o.broker, Group: o.group, Action: o.action, Args: o.args,
		Key: o.key, Delegation: string(op.delegation),
		Expires: duration(o.expires), Timeout: duration(o.timeout), WaitHealthy: duration(o.waitHealthy),
		MaxFailures: maxFailures, Waves: waves,
		Devices: make([]rolloutDevice, len(ids)),
	}
	for i, id := range ids {
		st.Devices[i].ID = id
	}
	return st
}

// rolloutTarget is the target of the command a device of a rollout gets.
func rolloutTarget(id string) string { return assert.TargetDevice + "/" + id }

const resumeUsage = `
Usage: paddock fleet rollout resume [ID] [--max-failures P%] [--broker URL] [--json]

Resume continues a rollout (by default the latest) where it was: devices
with a result are not sent to again, devices sent to without a result get
the same command again (a device answers it with its recorded result, and
never applies it twice), and the waves go on. A stopped rollout resumes
only with a higher --max-failures.
`

func rolloutResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("fleet rollout resume", resumeUsage, stdout)
	broker := fs.String("broker", "", "use the broker at `URL` rather than the rollout's")
	maxFailures := fs.String("max-failures", "", "raise the rollout's --max-failures to `PERCENT`")
	asJSON := fs.Bool("json", false, "print the rollout's status as JSON at the end")
	path, st, err := parseRolloutRef(fs, args)
	if err != nil {
		return err
	}
	if err := resumable(st, *maxFailures); err != nil {
		return err
	}
	if *broker != "" {
		st.Broker = *broker
	}
	l, err := dial(st.Broker, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	c := st.counts(st.Devices)
	fmt.Fprintf(stderr, "resuming rollout %s at wave %d/%d: %d done, %d failed, %d to re-send, %d not sent\n",
		st.ID, min(st.Wave+1, len(st.Waves)), len(st.Waves), c.Done, c.Failed, c.Pending, c.Unsent)
	r := newRunner(st, path, l, stdout, stderr)
	return r.finish(r.run(ctx), *asJSON)
}

// resumable checks that st may resume, raising its --max-failures.
func resumable(st *rolloutState, maxFailures string) error {
	if maxFailures != "" {
		p, err := parsePercent(maxFailures)
		if err != nil || !(p >= 0 && p <= 100) {
			return cli.UsageError("--max-failures %q: want a percentage such as 2%%", maxFailures)
		}
		if st.State == rolloutStopped && p <= st.MaxFailures {
			return fmt.Errorf("cannot resume rollout %s: --max-failures %g%% is not above its %g%%", st.ID, p, st.MaxFailures)
		}
		st.MaxFailures = p
	}
	switch st.State {
	case rolloutDone:
		return fmt.Errorf("rollout %s is already done", st.ID)
	case rolloutAborted:
		return fmt.Errorf("cannot resume rollout %s: it was aborted (start a new rollout)", st.ID)
	case rolloutStopped:
		if maxFailures == "" {
			return fmt.Errorf("cannot resume rollout %s: it stopped (%s); resume it with a higher --max-failures, or abort it", st.ID, st.Reason)
		}
	}
	st.State, st.Reason = rolloutRunning, ""
	return nil
}

// parseRolloutRef parses the options and [ID] of status, resume and abort,
// and loads the rollout.
func parseRolloutRef(fs *flag.FlagSet, args []string) (string, *rolloutState, error) {
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) > 1 {
		return "", nil, cli.UsageError("%s takes at most one rollout ID", fs.Name())
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
	}
	path, err := rolloutPath(id)
	if err != nil {
		return "", nil, err
	}
	st, err := loadRollout(path)
	return path, st, err
}

const abortUsage = `
Usage: paddock fleet rollout abort [ID]

Abort ends a rollout (by default the latest): no further command is sent.
A process still running the rollout stops within a second. Commands
already sent are not recalled.
`

func rolloutAbort(args []string, stdout io.Writer) error {
	fs := cli.NewFlagSet("fleet rollout abort", abortUsage, stdout)
	path, st, err := parseRolloutRef(fs, args)
	if err != nil {
		return err
	}
	switch st.State {
	case rolloutDone:
		return fmt.Errorf("cannot abort rollout %s: it is done", st.ID)
	case rolloutAborted:
		fmt.Fprintf(stdout, "rollout %s was already aborted\n", st.ID)
		return nil
	}
	if err := atomicfile.WriteFile(abortPath(path), []byte("aborted\n"), 0o644); err != nil {
		return err
	}
	st.State, st.Reason = rolloutAborted, "aborted by the operator"
	if err := st.save(path); err != nil {
		return err
	}
	c := st.counts(st.Devices)
	fmt.Fprintf(stdout, "aborted rollout %s: %d devices were sent the command (%d of them have not answered), %d were not\n",
		st.ID, c.Done+c.Failed+c.Pending, c.Pending, c.Unsent)
	return nil
}

// RolloutStatus is what 'paddock fleet rollout status --json' prints.
type RolloutStatus struct {
	ID     string    `json:"id"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Action string    `json:"action"`
	Args   mqtt.Args `json:"args"`
	Group  string    `json:"group"`
	// Wave is the wave under way or last run, from 1; Waves their number.
	Wave        int                   `json:"wave"`
	Waves       []RolloutWave         `json:"waves"`
	Total       int                   `json:"total"`
	Counts      RolloutCounts         `json:"counts"`
	FailureRate float64               `json:"failure-rate"`
	MaxFailures float64               `json:"max-failures"`
	Created     time.Time             `json:"created"`
	Updated     time.Time             `json:"updated"`
	Devices     []RolloutDeviceStatus `json:"devices"`
}

// RolloutDeviceStatus is a device of a rollout.
type RolloutDeviceStatus struct {
	ID      string `json:"id"`
	Command string `json:"command,omitempty"`
	Result  string `json:"result,omitempty"`
	Message string `json:"message,omitempty"`
}

func (st *rolloutState) status() RolloutStatus {
	c := st.counts(st.Devices)
	s := RolloutStatus{
		ID: st.ID, State: st.State, Reason: st.Reason, Action: st.Action, Args: st.Args, Group: st.Group,
		Wave: min(st.Wave+1, len(st.Waves)), Waves: st.Waves, Total: len(st.Devices), Counts: c,
		FailureRate: c.failureRate(), MaxFailures: st.MaxFailures, Created: st.Created, Updated: st.Updated,
		Devices: make([]RolloutDeviceStatus, len(st.Devices)),
	}
	for i, d := range st.Devices {
		s.Devices[i] = RolloutDeviceStatus{ID: d.ID, Command: d.Command, Result: d.Result, Message: d.Message}
	}
	return s
}

const statusUsage = `
Usage: paddock fleet rollout status [ID] [--json]

Status shows a rollout (by default the latest): its state, its wave, how
many devices are done, failed, pending (sent, no answer yet) and not sent.
`

func rolloutStatus(args []string, stdout io.Writer) error {
	fs := cli.NewFlagSet("fleet rollout status", statusUsage, stdout)
	asJSON := fs.Bool("json", false, "print the status, with every device, as JSON")
	_, st, err := parseRolloutRef(fs, args)
	if err != nil {
		return err
	}
	return writeStatus(stdout, st, *asJSON)
}

func writeStatus(w io.Writer, st *rolloutState, asJSON bool) error {
	s := st.status()
	if asJSON {
		return cli.WriteJSON(w, s)
	}
	wv := st.Waves[s.Wave-1]
	fmt.Fprintf(w, "rollout %s: %s (wave %d/%d: %g%%, %d devices)\n", s.ID, s.State, s.Wave, len(s.Waves), wv.Percent, wv.Count)
	fmt.Fprintf(w, "%s to group %s: %d devices: %d done, %d failed, %d pending, %d not sent\n",
		s.Action, s.Group, s.Total, s.Counts.Done, s.Counts.Failed, s.Counts.Pending, s.Counts.Unsent)
	fmt.Fprintf(w, "failure rate %.1f%% (max %g%%)\n", s.FailureRate, s.MaxFailures)
	if s.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", s.Reason)
	}
	var failed []string
	for _, d := range s.Devices {
		if d.Result != "" && d.Result != mqtt.EventDone && len(failed) < 10 {
			failed = append(failed, fmt.Sprintf("  %s: %s %s", cli.Printable(d.ID), cli.Printable(d.Result), cli.Printable(d.Message)))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "failed devices (first %d):\n%s\n", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// errInterrupted marks a rollout left to resume.
var errInterrupted = errors.New("interrupted")
