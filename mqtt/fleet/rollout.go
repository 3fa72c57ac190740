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
                             [--max-failures 2%] [--max-unhealthy N|P%]
                             [--soak DURATION | --wait-healthy DURATION]
                             [--timeout 30m] [--expires 1h] [--json]
       paddock fleet rollout status [ID] [--json]
       paddock fleet rollout resume [ID] [--max-failures P%]
                             [--max-unhealthy N|P%] [--broker URL]
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

Health gates the rollout. A device whose refresh undid itself (its new
revision was not healthy within its health window, and the previous one
runs again) answers "reverted: <reason>" and has failed, as reverted.
With --soak DURATION, a done device's retained state is watched for that
long: unhealthy (degraded or error) at any point fails it at once, and so
does a state that is not healthy at the end, as unhealthy; healthy
throughout, it is done. With --max-unhealthy N or P%, the rollout stops
after a wave in which more than N devices (or P% of those sent to) are
unhealthy or reverted, naming them with the reasons they gave. Both kinds
count as failures for --max-failures too. 'rollout status' shows each
wave's healthy, unhealthy and reverted devices, with their reasons.

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
	waves, maxFailures, maxUnhealthy string
	waitHealthy, soak                time.Duration
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
	fs.DurationVar(&o.soak, "soak", 0, "after done, watch the device's health for `DURATION`: unhealthy at any point or at the end fails it")
	fs.StringVar(&o.maxUnhealthy, "max-unhealthy", "", "stop when more than `N or P%` of the devices sent to are unhealthy or reverted")
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
	if o.expires <= 0 || o.timeout <= 0 || o.waitHealthy < 0 || o.soak < 0 {
		return nil, cli.UsageError("--expires and --timeout must be positive, --soak and --wait-healthy not negative")
	}
	if o.waitHealthy > 0 && o.soak > 0 {
		return nil, cli.UsageError("--soak and --wait-healthy: choose one (--soak watches the health for the whole time, --wait-healthy until the first ok)")
	}
	if o.maxUnhealthy != "" {
		if _, err := parseThreshold(o.maxUnhealthy); err != nil {
			return nil, cli.UsageError("%v", err)
		}
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
		Soak: duration(o.soak), MaxFailures: maxFailures, Waves: waves,
		Devices: make([]rolloutDevice, len(ids)),
	}
	if o.maxUnhealthy != "" {
		t, _ := parseThreshold(o.maxUnhealthy) // checked by parseRollout
		st.MaxUnhealthy = &t
	}
	for i, id := range ids {
		st.Devices[i].ID = id
	}
	return st
}

// rolloutTarget is the target of the command a device of a rollout gets.
func rolloutTarget(id string) string { return assert.TargetDevice + "/" + id }

const resumeUsage = `
Usage: paddock fleet rollout resume [ID] [--max-failures P%]
                                    [--max-unhealthy N|P%] [--broker URL] [--json]

Resume continues a rollout (by default the latest) where it was: devices
with a result are not sent to again, devices sent to without a result get
the same command again (a device answers it with its recorded result, and
never applies it twice), and the waves go on. A stopped rollout resumes
only with a higher --max-failures or --max-unhealthy.
`

func rolloutResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("fleet rollout resume", resumeUsage, stdout)
	broker := fs.String("broker", "", "use the broker at `URL` rather than the rollout's")
	maxFailures := fs.String("max-failures", "", "raise the rollout's --max-failures to `PERCENT`")
	maxUnhealthy := fs.String("max-unhealthy", "", "raise the rollout's --max-unhealthy to `N or P%`")
	asJSON := fs.Bool("json", false, "print the rollout's status as JSON at the end")
	path, st, err := parseRolloutRef(fs, args)
	if err != nil {
		return err
	}
	if err := resumable(st, *maxFailures, *maxUnhealthy); err != nil {
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

// resumable checks that st may resume, raising its --max-failures or
// --max-unhealthy: a stopped rollout needs one of them raised.
func resumable(st *rolloutState, maxFailures, maxUnhealthy string) error {
	raised := false
	if maxFailures != "" {
		p, err := parsePercent(maxFailures)
		if err != nil || !(p >= 0 && p <= 100) {
			return cli.UsageError("--max-failures %q: want a percentage such as 2%%", maxFailures)
		}
		raised = p > st.MaxFailures
		if st.State == rolloutStopped && !raised && maxUnhealthy == "" {
			return fmt.Errorf("cannot resume rollout %s: --max-failures %g%% is not above its %g%%", st.ID, p, st.MaxFailures)
		}
		st.MaxFailures = p
	}
	if maxUnhealthy != "" {
		t, err := parseThreshold(maxUnhealthy)
		if err != nil {
			return cli.UsageError("%v", err)
		}
		if st.MaxUnhealthy == nil || t.above(*st.MaxUnhealthy) {
			raised = true
		} else if st.State == rolloutStopped && !raised {
			return fmt.Errorf("cannot resume rollout %s: --max-unhealthy %s is not above its %s", st.ID, t, st.MaxUnhealthy)
		}
		st.MaxUnhealthy = &t
	}
	switch st.State {
	case rolloutDone:
		return fmt.Errorf("rollout %s is already done", st.ID)
	case rolloutAborted:
		return fmt.Errorf("cannot resume rollout %s: it was aborted (start a new rollout)", st.ID)
	case rolloutStopped:
		if !raised {
			return fmt.Errorf("cannot resume rollout %s: it stopped (%s); resume it with a higher --max-failures or --max-unhealthy, or abort it", st.ID, st.Reason)
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
	Wave int `json:"wave"`
	// Waves are the waves with their own devices' counts and reasons.
	Waves       []RolloutWaveStatus `json:"waves"`
	Total       int                 `json:"total"`
	Counts      RolloutCounts       `json:"counts"`
	FailureRate float64             `json:"failure-rate"`
	MaxFailures float64             `json:"max-failures"`
	// MaxUnhealthy is --max-unhealthy ("3" or "5%"), when set.
	MaxUnhealthy string `json:"max-unhealthy,omitempty"`
	// Soak and WaitHealthy say how done devices' health was watched; when
	// it was, done devices are healthy ones.
	Soak        string                `json:"soak,omitempty"`
	WaitHealthy string                `json:"wait-healthy,omitempty"`
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
	// Unconnected are the hardware plugs that wait for an operator on the
	// device after the command ('fleet send ... connect').
	Unconnected []string `json:"unconnected-plugs,omitempty"`
}

func (st *rolloutState) status() RolloutStatus {
	c := st.counts(st.Devices)
	s := RolloutStatus{
		ID: st.ID, State: st.State, Reason: st.Reason, Action: st.Action, Args: st.Args, Group: st.Group,
		Wave: min(st.Wave+1, len(st.Waves)), Waves: st.waveStatus(), Total: len(st.Devices), Counts: c,
		FailureRate: c.failureRate(), MaxFailures: st.MaxFailures, Created: st.Created, Updated: st.Updated,
		Devices: make([]RolloutDeviceStatus, len(st.Devices)),
	}
	if st.MaxUnhealthy != nil {
		s.MaxUnhealthy = st.MaxUnhealthy.String()
	}
	if st.Soak > 0 {
		s.Soak = time.Duration(st.Soak).String()
	}
	if st.WaitHealthy > 0 {
		s.WaitHealthy = time.Duration(st.WaitHealthy).String()
	}
	for i, d := range st.Devices {
		s.Devices[i] = RolloutDeviceStatus{ID: d.ID, Command: d.Command, Result: d.Result, Message: d.Message, Unconnected: d.Unconnected}
	}
	return s
}

const statusUsage = `
Usage: paddock fleet rollout status [ID] [--json]

Status shows a rollout (by default the latest): its state, its wave, how
many devices are done, failed, pending (sent, no answer yet) and not sent,
and for each wave how many of its devices are healthy (done), unhealthy,
reverted or otherwise failed, with the reasons they gave.
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
	limits := fmt.Sprintf("failure rate %.1f%% (max %g%%)", s.FailureRate, s.MaxFailures)
	if s.MaxUnhealthy != "" {
		limits += fmt.Sprintf("; %d unhealthy or reverted (max %s)", s.Counts.Unhealthy+s.Counts.Reverted, s.MaxUnhealthy)
	}
	if s.Soak != "" {
		limits += "; soak " + s.Soak
	}
	fmt.Fprintln(w, limits)
	if s.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", cli.Printable(s.Reason))
	}
	done := "done"
	if s.Soak != "" || s.WaitHealthy != "" {
		done = "healthy"
	}
	for i, ws := range s.Waves {
		c := ws.Counts
		parts := []string{fmt.Sprintf("%d %s", c.Done, done)}
		for _, p := range []struct {
			n    int
			what string
		}{{c.Unhealthy, "unhealthy"}, {c.Reverted, "reverted"}, {c.Failed - c.Unhealthy - c.Reverted, "failed otherwise"}, {c.Pending, "pending"}, {c.Unsent, "not sent"}} {
			if p.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		fmt.Fprintf(w, "wave %d (%g%%, %d devices): %s\n", i+1, ws.Percent, ws.Devices, strings.Join(parts, ", "))
		for _, r := range ws.Reasons {
			devs := make([]string, len(r.Devices))
			for k, d := range r.Devices {
				devs[k] = cli.Printable(d)
			}
			if r.Count > len(devs) {
				devs = append(devs, "...")
			}
			fmt.Fprintf(w, "  %d %s: %s (%s)\n", r.Count, cli.Printable(r.Result), cli.Printable(r.Message), strings.Join(devs, ", "))
		}
	}
	writeUnconnected(w, s.Devices)
	return nil
}

// writeUnconnected lists the devices whose hardware plugs wait for an
// operator, a few of them.
func writeUnconnected(w io.Writer, devs []RolloutDeviceStatus) {
	const shown = 5
	n := 0
	for _, d := range devs {
		if len(d.Unconnected) == 0 {
			continue
		}
		if n++; n <= shown {
			plugs := make([]string, len(d.Unconnected))
			for i, p := range d.Unconnected {
				plugs[i] = cli.Printable(p)
			}
			fmt.Fprintf(w, "%s: hardware plugs not connected: %s (connect with 'paddock fleet send --device %s connect APP:PLUG [SLOT]')\n",
				cli.Printable(d.ID), strings.Join(plugs, ", "), cli.Printable(d.ID))
		}
	}
	if n > shown {
		fmt.Fprintf(w, "and %d more devices with hardware plugs not connected (see --json)\n", n-shown)
	}
}

// errInterrupted marks a rollout left to resume.
var errInterrupted = errors.New("interrupted")
