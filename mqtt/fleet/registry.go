package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
)

// quietPeriod ends the collection of retained messages early: the broker
// sends them in one burst right after the subscription, so a pause this
// long means they have all arrived.
var quietPeriod = 500 * time.Millisecond

// registry collects the retained states and presences of the devices.
type registry struct {
	mu     sync.Mutex
	states map[string]*mqtt.State
	online map[string]mqtt.Presence
	last   time.Time // when the last message arrived
}

func newRegistry() *registry {
	return &registry{states: map[string]*mqtt.State{}, online: map[string]mqtt.Presence{}}
}

func (r *registry) onState(_ paho.Client, m paho.Message) {
	var st mqtt.State
	id := topicDevice(m.Topic())
	if id == "" || len(m.Payload()) == 0 || json.Unmarshal(m.Payload(), &st) != nil {
		return // a cleared or foreign message; the broker is not trusted
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[id] = &st
	r.last = time.Now()
}

func (r *registry) onOnline(_ paho.Client, m paho.Message) {
	var p mqtt.Presence
	id := topicDevice(m.Topic())
	if id == "" || len(m.Payload()) == 0 || json.Unmarshal(m.Payload(), &p) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.online[id] = p
	r.last = time.Now()
}

// collect subscribes to the states (and presences, with presence) of every
// device and returns once the retained messages have arrived: after a
// quiet period, or at the latest after wait.
func (r *registry) collect(l *link, wait time.Duration, presence bool) error {
	start := time.Now()
	if err := l.subscribe(allStates, r.onState); err != nil {
		return err
	}
	if presence {
		if err := l.subscribe(allOnline, r.onOnline); err != nil {
			return err
		}
	}
	subscribed := time.Now()
	quiet := min(quietPeriod, wait)
	for {
		r.mu.Lock()
		last := r.last
		r.mu.Unlock()
		if last.Before(subscribed) {
			last = subscribed
		}
		now := time.Now()
		if now.Sub(start) >= wait || now.Sub(last) >= quiet {
			return nil
		}
		time.Sleep(min(quiet/5, 50*time.Millisecond) + time.Millisecond)
	}
}

// validDeviceID is what a device id can be (agent.yaml's rule): no
// command can target another, so a state under such an id is forged.
var validDeviceID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })

// group returns the sorted IDs of the devices whose state lists group,
// and, apart, those of its states whose id no device can have.
func (r *registry) group(group string) (ids, forged []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, st := range r.states {
		switch {
		case !slices.Contains(st.Groups, group):
		case validDeviceID().MatchString(id):
			ids = append(ids, id)
		default:
			forged = append(forged, id)
		}
	}
	sort.Strings(ids)
	sort.Strings(forged)
	return ids, forged
}

// warnForged says which states of a group were left out.
func warnForged(w io.Writer, group string, forged []string) {
	if len(forged) == 0 {
		return
	}
	quoted := make([]string, len(forged))
	for i, id := range forged {
		quoted[i] = cli.Printable(id)
	}
	fmt.Fprintf(w, "warning: leaving out %d states of group %s under ids no device can have (forged?): %s\n", len(forged), group, strings.Join(quoted, ", "))
}

// DeviceInfo is what 'paddock fleet devices' reports of a device.
type DeviceInfo struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
	// Presence is false when the device never published its presence.
	Presence     bool            `json:"presence"`
	Groups       []string        `json:"groups,omitempty"`
	BaseSlot     string          `json:"base-slot,omitempty"`
	Apps         []mqtt.AppState `json:"apps"`
	Health       string          `json:"health,omitempty"`
	Problems     []string        `json:"problems,omitempty"`
	AgentVersion string          `json:"agent-version,omitempty"`
	// Connections are the plugs of the device's apps and their slots, as
	// its state reports them.
	Connections []mqtt.ConnectionState `json:"connections,omitempty"`
	// LastSeen is the time of the device's state.
	LastSeen time.Time `json:"last-seen,omitzero"`
	// RefusalsDropped and AnswersDropped count the events the device
	// dropped while its broker was out of reach (since it started).
	RefusalsDropped uint64 `json:"refusals-dropped,omitempty"`
	AnswersDropped  uint64 `json:"answers-dropped,omitempty"`
}

// devices returns the devices known by state or presence, sorted by ID,
// keeping those of group when group is not "".
func (r *registry) devices(group string) []DeviceInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := map[string]bool{}
	for id := range r.states {
		ids[id] = true
	}
	for id := range r.online {
		ids[id] = true
	}
	list := []DeviceInfo{}
	for id := range ids {
		d := DeviceInfo{ID: id, Apps: []mqtt.AppState{}}
		if p, ok := r.online[id]; ok {
			d.Online, d.Presence = p.Online, true
		}
		if st := r.states[id]; st != nil {
			d.Groups, d.BaseSlot, d.Health, d.Problems = st.Groups, st.BaseSlot, st.Health, st.Problems
			d.AgentVersion, d.LastSeen = st.AgentVersion, st.Time
			d.Connections = st.Connections
			d.RefusalsDropped, d.AnswersDropped = st.Metrics.RefusalsDropped, st.Metrics.AnswersDropped
			if st.Apps != nil {
				d.Apps = st.Apps
			}
		}
		if group == "" || slices.Contains(d.Groups, group) {
			list = append(list, d)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}
