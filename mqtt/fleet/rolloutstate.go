package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
)

// The states of a rollout.
const (
	// rolloutRunning: waves remain; a rollout whose process died stays
	// running until resumed.
	rolloutRunning = "running"
	rolloutDone    = "done"
	// rolloutStopped: the failures crossed --max-failures.
	rolloutStopped = "stopped"
	rolloutAborted = "aborted"
)

// rolloutVersion is the version of the on-disk format.
const rolloutVersion = 1

// rolloutState is a rollout as kept on disk, in ROLLOUTS/ID.json. It is
// written before commands are published, so that a resumed rollout sends
// the same command again (which a device never applies twice) rather than
// a new one.
type rolloutState struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	Broker string    `json:"broker"`
	Group  string    `json:"group"`
	Action string    `json:"action"`
	Args   mqtt.Args `json:"args"`
	// Key names the operator key in the key store; Delegation holds the
	// account-key assertions sent before each command.
	Key         string   `json:"key"`
	Delegation  string   `json:"delegation"`
	Expires     duration `json:"expires"`
	Timeout     duration `json:"timeout"`
	WaitHealthy duration `json:"wait-healthy,omitzero"`
	// Soak is how long the health of a device is watched once it is done
	// (--soak): unhealthy at any point, or not healthy at the end, fails it.
	Soak duration `json:"soak,omitzero"`
	// MaxFailures is a percentage of the devices sent to so far.
	MaxFailures float64 `json:"max-failures"`
	// MaxUnhealthy, when set, stops the rollout once more devices than it
	// allows are unhealthy or reverted their refresh (--max-unhealthy).
	MaxUnhealthy *threshold `json:"max-unhealthy,omitempty"`

	Waves []RolloutWave `json:"waves"`
	// Wave is the index of the wave under way (len(Waves) when done).
	Wave int `json:"wave"`
	// Devices are the group's devices at the start, sorted by ID: wave k
	// covers Devices[:Waves[k].Count].
	Devices []rolloutDevice `json:"devices"`
}

// RolloutWave is a step of a rollout: a cumulative percentage of the devices.
type RolloutWave struct {
	Percent float64 `json:"percent"`
	Count   int     `json:"count"`
}

// rolloutDevice is one device of a rollout.
type rolloutDevice struct {
	ID string `json:"id"`
	// Command is the ID of the command sent; Assertion is the signed
	// command, kept until the device answers, to be re-sent as it is.
	Command   string    `json:"command,omitempty"`
	Assertion string    `json:"assertion,omitempty"`
	Sent      time.Time `json:"sent,omitzero"`
	// Result is done, failed, refused, timeout, unhealthy or reverted;
	// "" while the device has not answered. With --wait-healthy or
	// --soak, done means healthy too.
	Result   string    `json:"result,omitempty"`
	Message  string    `json:"message,omitempty"`
	Finished time.Time `json:"finished,omitzero"`
	// Unconnected are the hardware plugs that the device's answer says
	// wait for an operator (a refresh added them).
	Unconnected []string `json:"unconnected-plugs,omitempty"`
}

// duration is a time.Duration written as "1h30m0s".
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = duration(v)
	return err
}

// rolloutDir is where rollouts are kept: $PADDOCK_FLEET_DIR/rollouts, or
// else ~/.local/share/paddock/rollouts (honouring $XDG_DATA_HOME).
func rolloutDir() (string, error) {
	if dir := os.Getenv("PADDOCK_FLEET_DIR"); dir != "" {
		return filepath.Join(dir, "rollouts"), nil
	}
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "paddock", "rollouts"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find where rollouts are kept (set PADDOCK_FLEET_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "paddock", "rollouts"), nil
}

// newRolloutID returns an ID that sorts by creation time.
func newRolloutID() string {
	return timeNow().UTC().Format("20060102-150405") + "-" + randomHex(2)
}

var validRolloutID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// rolloutPath returns the file of rollout id; "" picks the latest.
func rolloutPath(id string) (string, error) {
	dir, err := rolloutDir()
	if err != nil {
		return "", err
	}
	if id != "" {
		if !validRolloutID.MatchString(id) {
			return "", fmt.Errorf("invalid rollout ID %q", id)
		}
		return filepath.Join(dir, id+".json"), nil
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(names) == 0 {
		return "", fmt.Errorf("no rollout in %s (start one with 'paddock fleet rollout ACTION ... --group G')", dir)
	}
	sort.Strings(names)
	return names[len(names)-1], nil
}

// abortPath is the marker that 'rollout abort' leaves for a running process.
func abortPath(path string) string { return strings.TrimSuffix(path, ".json") + ".abort" }

// loadRollout reads the rollout in path.
func loadRollout(path string) (*rolloutState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no rollout %s (see 'paddock fleet rollout status')", strings.TrimSuffix(filepath.Base(path), ".json"))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read rollout: %w", err)
	}
	var st rolloutState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("cannot read rollout %s: %w", path, err)
	}
	if st.Version != rolloutVersion {
		return nil, fmt.Errorf("cannot read rollout %s: format version %d, want %d", path, st.Version, rolloutVersion)
	}
	if _, err := os.Stat(abortPath(path)); err == nil && st.State == rolloutRunning {
		st.State, st.Reason = rolloutAborted, "aborted by the operator"
	}
	return &st, nil
}

// save writes the rollout to path atomically.
func (st *rolloutState) save(path string) error {
	st.Updated = timeNow().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("internal error: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot save rollout %s: %w", st.ID, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// parseWaves parses "1%,10%,50%,100%" into waves over n devices: the
// percentages are cumulative, rounded up, the first wave has at least one
// device, and waves that add no device are dropped.
func parseWaves(s string, n int) ([]RolloutWave, error) {
	var waves []RolloutWave
	prev := 0.0
	for _, f := range strings.Split(s, ",") {
		p, err := parsePercent(f)
		if err != nil || !(p > prev && p <= 100) { // NaN fails too
			return nil, fmt.Errorf("--waves %q: want increasing percentages up to 100%%, such as 1%%,10%%,50%%,100%%", s)
		}
		prev = p
		count := min(n, max(1, int(math.Ceil(p*float64(n)/100-1e-9))))
		if len(waves) > 0 && count <= waves[len(waves)-1].Count {
			continue
		}
		waves = append(waves, RolloutWave{Percent: p, Count: count})
	}
	return waves, nil
}

// parsePercent parses "2%" or "2".
func parsePercent(s string) (float64, error) {
	return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
}

// RolloutCounts tallies the devices of a rollout.
type RolloutCounts struct {
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// Unhealthy and Reverted are the failed devices that were unhealthy
	// once done, and those whose refresh undid itself.
	Unhealthy int `json:"unhealthy"`
	Reverted  int `json:"reverted"`
	Pending   int `json:"pending"` // sent, not answered
	Unsent    int `json:"unsent"`
}

// sent is how many devices were sent the command.
func (c RolloutCounts) sent() int { return c.Done + c.Failed + c.Pending }

func (st *rolloutState) counts(devices []rolloutDevice) RolloutCounts {
	var c RolloutCounts
	for _, d := range devices {
		switch {
		case d.Result == mqtt.EventDone:
			c.Done++
		case d.Result != "":
			c.Failed++
			switch d.Result {
			case resultUnhealthy:
				c.Unhealthy++
			case resultReverted:
				c.Reverted++
			}
		case d.Command != "":
			c.Pending++
		default:
			c.Unsent++
		}
	}
	return c
}

// failureRate is the percentage of failed devices among those sent to.
func (c RolloutCounts) failureRate() float64 {
	sent := c.sent()
	if sent == 0 {
		return 0
	}
	return 100 * float64(c.Failed) / float64(sent)
}

// threshold is --max-unhealthy: a number of devices ("3"), or a
// percentage of the devices sent to ("5%"). It is exceeded by more.
type threshold struct {
	N         int
	Percent   float64
	IsPercent bool
}

// parseThreshold parses "N" or "P%".
func parseThreshold(s string) (threshold, error) {
	bad := fmt.Errorf("--max-unhealthy %q: want a number of devices such as 2, or a percentage such as 5%%", s)
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || !(v >= 0 && v <= 100) {
			return threshold{}, bad
		}
		return threshold{Percent: v, IsPercent: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return threshold{}, bad
	}
	return threshold{N: n}, nil
}

func (t threshold) String() string {
	if t.IsPercent {
		return strconv.FormatFloat(t.Percent, 'g', -1, 64) + "%"
	}
	return strconv.Itoa(t.N)
}

func (t threshold) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *threshold) UnmarshalText(b []byte) error {
	v, err := parseThreshold(string(b))
	*t = v
	return err
}

// exceeded reports whether bad of sent devices are more than t allows.
func (t threshold) exceeded(bad, sent int) bool {
	if t.IsPercent {
		return sent > 0 && 100*float64(bad)/float64(sent) > t.Percent
	}
	return bad > t.N
}

// above reports whether t allows more than u (a raise for resume).
func (t threshold) above(u threshold) bool {
	if t.IsPercent != u.IsPercent {
		return true // another kind of limit: the operator chose it
	}
	if t.IsPercent {
		return t.Percent > u.Percent
	}
	return t.N > u.N
}

// maxNamed bounds the devices a stop reason names one by one.
const maxNamed = 5

// overLimits says why the rollout must stop after its wave: more failures
// than --max-failures, or more unhealthy or reverted devices than
// --max-unhealthy (naming them, with their reasons); "" when it goes on.
func (st *rolloutState) overLimits() string {
	c := st.counts(st.Devices)
	if t := st.MaxUnhealthy; t != nil && t.exceeded(c.Unhealthy+c.Reverted, c.sent()) {
		var named []string
		for _, d := range st.Devices {
			if d.Result == resultUnhealthy || d.Result == resultReverted {
				if len(named) == maxNamed {
					named = append(named, fmt.Sprintf("and %d more", c.Unhealthy+c.Reverted-maxNamed))
					break
				}
				// The device wrote the message: it is escaped.
				named = append(named, fmt.Sprintf("%s %s: %s", cli.Printable(d.ID), d.Result, cli.Printable(d.Message)))
			}
		}
		return fmt.Sprintf("%d of %d devices sent to are unhealthy or reverted (more than --max-unhealthy %s): %s",
			c.Unhealthy+c.Reverted, c.sent(), t, strings.Join(named, "; "))
	}
	if rate := c.failureRate(); rate > st.MaxFailures {
		return fmt.Sprintf("%d of %d devices sent to failed (%.1f%%, more than --max-failures %g%%)",
			c.Failed, c.sent(), rate, st.MaxFailures)
	}
	return ""
}

// RolloutWaveStatus is a wave of a rollout as 'rollout status' shows it:
// the devices it adds to the waves before it, their counts, and the
// reasons its failed devices gave.
type RolloutWaveStatus struct {
	RolloutWave
	// Devices is how many devices the wave adds (Count is cumulative).
	Devices int             `json:"devices"`
	Counts  RolloutCounts   `json:"counts"`
	Reasons []RolloutReason `json:"reasons,omitempty"`
}

// RolloutReason is one reason devices of a wave gave for a result other
// than done: how many gave it, and the first few of them.
type RolloutReason struct {
	Result  string   `json:"result"`
	Message string   `json:"message"`
	Count   int      `json:"count"`
	Devices []string `json:"devices"`
}

// waveStatus tallies each wave's own devices.
func (st *rolloutState) waveStatus() []RolloutWaveStatus {
	out := make([]RolloutWaveStatus, len(st.Waves))
	from := 0
	for i, w := range st.Waves {
		devs := st.Devices[from:w.Count]
		ws := RolloutWaveStatus{RolloutWave: w, Devices: len(devs), Counts: st.counts(devs)}
		byReason := map[[2]string]int{}
		for _, d := range devs {
			if d.Result == "" || d.Result == mqtt.EventDone {
				continue
			}
			key := [2]string{d.Result, d.Message}
			k, ok := byReason[key]
			if !ok {
				k = len(ws.Reasons)
				byReason[key] = k
				ws.Reasons = append(ws.Reasons, RolloutReason{Result: d.Result, Message: d.Message})
			}
			r := &ws.Reasons[k]
			r.Count++
			if len(r.Devices) < maxNamed {
				r.Devices = append(r.Devices, d.ID)
			}
		}
		sort.SliceStable(ws.Reasons, func(a, b int) bool { return ws.Reasons[a].Count > ws.Reasons[b].Count })
		out[i] = ws
		from = w.Count
	}
	return out
}
