package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
)

const sendUsage = `
Usage: paddock fleet send --broker URL --key NAME --delegation FILE
                          (--device ID | --group G) [--expires 1h] [--timeout 5m]
                          [--assert FILE] [--lines N] [--json] ACTION [ARGS]

Send signs one command with the operator key NAME (from the key store,
$PADDOCK_KEYS), sends it with the delegation in FILE ('paddock key delegate
--role operator') to a device or to a group, and follows the answers: the
progress goes to standard error, a final line per device to standard
output. It exits non-zero when a device fails or refuses the command, or
does not answer within --timeout. The devices of a group are those whose
retained state lists it.

Actions:
    install URL [URL...]       install the .pdk at URL (mirrors may follow)
    refresh URL [URL...]       refresh an app to the .pdk at URL
    base-update URL [URL...]   update the base
    remove|revert NAME         remove an app, or go back to its previous revision
    start|stop|restart NAME    act on an app's services
    logs NAME [--lines N]      fetch an app's last log lines
    connect APP:PLUG [SLOT]    connect an app's plug (to the gadget's only slot that fits)
    disconnect APP:PLUG        disconnect an app's plug
    config-set APP.KEY VALUE   set a key of an app's configuration (VALUE: JSON or text)
    reboot
    ping

A device gives up a mirror slower than a minimum rate and a download
that outlasts its deadline (--download-min-rate, --download-deadline, or
the device's agent.yaml). It runs commands for different apps side by
side and those for one app in order, and answers pings at once.

The assertions of a package (install, refresh, base-update) are read from
--assert FILE; by default from NAME.pdk.assert in the current directory
(NAME.pdk being the first URL's last element, as 'paddock sign' names it),
or else fetched from the first URL with ".assert" appended.

Example:
    paddock fleet send --broker tcp://broker:1883 --key ops --delegation ops.assert \
        --group lab install https://cdn.example.com/hello_1.0.pdk
`

// DeviceResult is how a device answered a command.
type DeviceResult struct {
	Device string `json:"device"`
	// Result is done, failed, reverted, refused or timeout.
	Result   string          `json:"result"`
	Message  string          `json:"message,omitempty"`
	Output   json.RawMessage `json:"output,omitempty"`
	Replayed bool            `json:"replayed,omitempty"`
}

// SendResult is what 'paddock fleet send --json' prints.
type SendResult struct {
	Command string         `json:"command"`
	Target  string         `json:"target"`
	Action  string         `json:"action"`
	Devices []DeviceResult `json:"devices"`
}

// The results of a device for a command, beyond the final event types.
const (
	resultTimeout   = "timeout"
	resultUnhealthy = "unhealthy"
	// resultReverted: the device failed the command by undoing it, its
	// new revision unhealthy (the message begins mqtt.RevertedPrefix).
	resultReverted = "reverted"
)

// resultOf is the result and message a final event gives its device: a
// reverted refresh is told by its result, its message is the reason.
func resultOf(ev *mqtt.Event) (string, string) {
	if why, ok := strings.CutPrefix(ev.Message, mqtt.RevertedPrefix); ok && ev.Type == mqtt.EventFailed {
		return resultReverted, why
	}
	return ev.Type, ev.Message
}

type sendOptions struct {
	broker, key, delegation, device, group string
	expires, timeout, wait                 time.Duration
	asJSON                                 bool
	action                                 string
	args                                   mqtt.Args
}

func parseSend(args []string, stdout io.Writer) (*sendOptions, error) {
	fs := cli.NewFlagSet("fleet send", sendUsage, stdout)
	o := &sendOptions{}
	fs.StringVar(&o.broker, "broker", os.Getenv("PADDOCK_BROKER"), "the MQTT broker's `URL` (default $PADDOCK_BROKER)")
	fs.StringVar(&o.key, "key", "", "sign with the operator key `NAME` from the key store (required)")
	fs.StringVar(&o.delegation, "delegation", "", "the delegation of the operator key, in `FILE` (required)")
	fs.StringVar(&o.device, "device", "", "send to the device `ID`")
	fs.StringVar(&o.group, "group", "", "send to the devices of `GROUP`")
	fs.DurationVar(&o.expires, "expires", time.Hour, "devices refuse the command after `DURATION`")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "wait at most `DURATION` for the devices' answers")
	fs.DurationVar(&o.wait, "wait", 2*time.Second, "wait at most `DURATION` for the retained states that name a group's devices")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON")
	aopts := actionFlags(fs)
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if err := needBroker("fleet send", o.broker); err != nil {
		return nil, err
	}
	if o.key == "" || o.delegation == "" {
		return nil, cli.UsageError("fleet send needs --key NAME and --delegation FILE")
	}
	if (o.device == "") == (o.group == "") {
		return nil, cli.UsageError("fleet send needs one of --device ID or --group GROUP")
	}
	if o.expires <= 0 || o.timeout <= 0 {
		return nil, cli.UsageError("--expires and --timeout must be positive")
	}
	o.action, o.args, err = parseAction(pos, *aopts)
	return o, err
}

// actionFlags adds the options that feed an action's arguments.
func actionFlags(fs interface {
	IntVar(*int, string, int, string)
	Int64Var(*int64, string, int64, string)
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) *actionOptions {
	o := &actionOptions{}
	fs.IntVar(&o.lines, "lines", 0, "logs: send back the last `N` lines (default: the device's choice)")
	fs.StringVar(&o.assertFile, "assert", "", "install, refresh: the package's assertions, in `FILE` (from 'paddock sign')")
	fs.Int64Var(&o.minRate, "download-min-rate", 0, "install, refresh, base-update: give up a mirror slower than `BYTES` per second over 30 s; -1 for no minimum (default: the device's, 1024)")
	fs.DurationVar(&o.deadline, "download-deadline", 0, "install, refresh, base-update: give up the download after `DURATION` in all; negative for none (default: the device's, 10m plus the size at the minimum rate)")
	return o
}

// Send is 'paddock fleet send'.
func Send(args []string, stdout, stderr io.Writer) error {
	o, err := parseSend(args, stdout)
	if err != nil {
		return err
	}
	op, l, err := connectOperator(o.key, o.delegation, o.broker, stderr)
	if err != nil {
		return err
	}
	defer l.close()
	s := &sender{o: o, stdout: stdout, stderr: stderr, results: map[string]*DeviceResult{}, waiting: map[string]bool{}}
	if err := s.targets(l); err != nil {
		return err
	}
	cmd, err := op.sign(s.target(), o.action, o.args, o.expires)
	if err != nil {
		return err
	}
	s.id = cmd.Header("id")
	return s.run(l, bundle(op.delegation, cmd.Encode()))
}

// sender follows one command to its devices.
type sender struct {
	o              *sendOptions
	stdout, stderr io.Writer
	id             string
	results        map[string]*DeviceResult
	waiting        map[string]bool // devices expected to answer
}

func (s *sender) target() string {
	if s.o.device != "" {
		return assert.TargetDevice + "/" + s.o.device
	}
	return assert.TargetGroup + "/" + s.o.group
}

// targets finds the devices expected to answer.
func (s *sender) targets(l *link) error {
	if s.o.device != "" {
		s.waiting[s.o.device] = true
		return nil
	}
	r := newRegistry()
	if err := r.collect(l, s.o.wait, false); err != nil {
		return err
	}
	ids, forged := r.group(s.o.group)
	warnForged(s.stderr, s.o.group, forged)
	if len(ids) == 0 {
		return fmt.Errorf("cannot send to group %s: no device reports it (see 'paddock fleet devices')", s.o.group)
	}
	for _, id := range ids {
		s.waiting[id] = true
	}
	return nil
}

// run subscribes to the answers, publishes the command and waits.
func (s *sender) run(l *link, payload []byte) error {
	ch := make(chan inbound, 1024)
	filter, topic := allEvents, mqtt.GroupTopic(s.o.group)
	if s.o.device != "" {
		filter, topic = mqtt.EventsTopic(s.o.device), mqtt.CmdTopic(s.o.device)
	}
	if err := l.subscribe(filter, l.eventHandler(ch)); err != nil {
		return err
	}
	if err := l.publishOne(topic, payload); err != nil {
		return err
	}
	fmt.Fprintf(s.stderr, "sent %s command %s to %s (%d devices)\n", s.o.action, s.id, s.target(), len(s.waiting))
	timeout := time.NewTimer(s.o.timeout)
	defer timeout.Stop()
	for len(s.waiting) > 0 {
		select {
		case m := <-ch:
			s.handle(m.device, m.event)
		case <-timeout.C:
			for id := range s.waiting {
				s.final(id, &DeviceResult{Device: id, Result: resultTimeout, Message: fmt.Sprintf("no answer within %s", s.o.timeout)})
			}
		}
	}
	return s.report()
}

// handle takes one event of a device.
func (s *sender) handle(device string, ev *mqtt.Event) {
	if ev.Type == mqtt.EventDropped && s.waiting[device] {
		warnDropped(s.stderr, device, ev)
		return
	}
	if ev.Command != s.id || s.results[device] != nil {
		return
	}
	switch {
	case ev.Final():
		result, msg := resultOf(ev)
		s.final(device, &DeviceResult{Device: device, Result: result, Message: msg, Output: ev.Result, Replayed: ev.Replayed})
	case ev.Type == mqtt.EventProgress:
		fmt.Fprintf(s.stderr, "%s: %s %d%%\n", cli.Printable(device), cli.Printable(ev.Step), ev.Percent)
	default:
		fmt.Fprintf(s.stderr, "%s: %s\n", cli.Printable(device), cli.Printable(ev.Type))
	}
}

// warnDropped tells the operator that a device awaited dropped answers:
// the one awaited may be among them.
func warnDropped(w io.Writer, device string, ev *mqtt.Event) {
	fmt.Fprintf(w, "warning: %s: %s; its answer to this command may be among them\n", cli.Printable(device), cli.Printable(ev.Message))
}

// final records a device's result and prints its line.
func (s *sender) final(device string, r *DeviceResult) {
	delete(s.waiting, device)
	s.results[device] = r
	if s.o.asJSON {
		return
	}
	line := cli.Printable(device) + ": " + cli.Printable(r.Result)
	if r.Message != "" {
		line += ": " + cli.Printable(r.Message)
	}
	if out := formatOutput(r.Output); out != "" {
		line += "\n" + out
	}
	fmt.Fprintln(s.stdout, line)
}

// formatOutput renders a command's result for a terminal: a string as it
// is, a list of strings (log lines) one per line, anything else as JSON;
// escaped, since the device wrote it.
func formatOutput(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return cli.PrintableLines(str)
	}
	var lines []string
	if json.Unmarshal(raw, &lines) == nil {
		for i, l := range lines {
			lines[i] = cli.Printable(l)
		}
		return strings.Join(lines, "\n")
	}
	return cli.Printable(string(raw))
}

// report prints the JSON results and the summary of what went wrong.
func (s *sender) report() error {
	res := SendResult{Command: s.id, Target: s.target(), Action: s.o.action, Devices: []DeviceResult{}}
	counts := map[string]int{}
	for _, r := range s.results {
		res.Devices = append(res.Devices, *r)
		counts[r.Result]++
	}
	sort.Slice(res.Devices, func(i, j int) bool { return res.Devices[i].Device < res.Devices[j].Device })
	if s.o.asJSON {
		if err := cli.WriteJSON(s.stdout, res); err != nil {
			return err
		}
	}
	bad := len(s.results) - counts[mqtt.EventDone]
	if bad == 0 {
		return nil
	}
	var parts []string
	for _, k := range []string{mqtt.EventFailed, resultReverted, mqtt.EventRefused, resultTimeout} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	fmt.Fprintf(s.stderr, "error: command %s did not complete on %d of %d devices (%s)\n", s.id, bad, len(s.results), strings.Join(parts, ", "))
	return cli.ExitCode(1)
}
