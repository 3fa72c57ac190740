package fleet

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

// Behaviours of a fake device.
const (
	fakeDone   = "done"
	fakeFail   = "fail"
	fakeRefuse = "refuse"
	fakeHold   = "hold" // receive, answer only on release
	// fakeDegraded: done, but the state after it says health degraded.
	fakeDegraded = "degraded"
	// fakeReverted: its refresh undid itself, the new revision unhealthy.
	fakeReverted = "reverted"
	// fakeSoured: done and healthy, then, a little later, health error.
	fakeSoured = "soured"
	// fakeWaiting: done, and its health says waiting from then on.
	fakeWaiting = "waiting"
	// fakeFlooded: a device that dropped refusals while its broker was
	// out of reach: its state counts them, and it reports them before
	// its answer.
	fakeFlooded = "flooded"
	// fakeHostile: a forged device whose every text carries terminal
	// escapes: its state, its progress, its failure.
	fakeHostile = "hostile"
)

// hostileText holds what a forged device sends to drive the operator's
// terminal: colour and title escapes, a bell, a carriage return that
// overwrites the line, C1 controls, a bidirectional override.
const hostileText = "\x1b[31mred\x1b]0;owned\x07\rok\u009b2J\u202eevil\x7f"

// fakeDevice is a device simulated at the MQTT level: the real device link
// is tested in package mqtt.
type fakeDevice struct {
	id       string
	groups   []string
	mode     string
	received []string              // command IDs, in arrival order
	final    map[string]mqtt.Event // recorded answer per applied command
	held     map[string]*assert.Command
	seq      uint64
	soured   bool // fakeSoured, once it went bad
}

// fakeFleet simulates devices over one MQTT client.
type fakeFleet struct {
	t      testing.TB
	client paho.Client
	mu     sync.Mutex
	devs   map[string]*fakeDevice
}

func startFakeFleet(t testing.TB, broker string) *fakeFleet {
	t.Helper()
	f := &fakeFleet{t: t, devs: map[string]*fakeDevice{}}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID("fake-fleet-" + randomHex(4)).SetCleanSession(true).SetOrderMatters(false)
	f.client = paho.NewClient(opts)
	if tok := f.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fake fleet cannot connect: %v", tok.Error())
	}
	t.Cleanup(func() { f.client.Disconnect(100) })
	for _, filter := range []string{mqtt.TopicPrefix + "devices/+/cmd", mqtt.TopicPrefix + "groups/+/cmd"} {
		if tok := f.client.Subscribe(filter, 1, f.onCommand); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("fake fleet cannot subscribe: %v", tok.Error())
		}
	}
	return f
}

// add adds a device and publishes its retained state and presence.
func (f *fakeFleet) add(id, mode string, groups ...string) {
	f.mu.Lock()
	f.devs[id] = &fakeDevice{id: id, groups: groups, mode: mode, final: map[string]mqtt.Event{}, held: map[string]*assert.Command{}}
	f.mu.Unlock()
	f.publishState(id, time.Now()).Wait()
	p, _ := json.Marshal(mqtt.Presence{Online: true, Time: time.Now()})
	f.publish(mqtt.OnlineTopic(id), p, true).Wait()
}

func (f *fakeFleet) publishState(id string, at time.Time) paho.Token {
	f.mu.Lock()
	d := f.devs[id]
	st := mqtt.State{Device: id, Groups: d.groups, AgentVersion: "test", Time: at, Health: "ok", BaseSlot: "a",
		Apps: []mqtt.AppState{{Name: "hello", Version: "1.0", Revision: 1 + len(d.final)}}}
	if d.mode == fakeDegraded && len(d.final) > 0 {
		st.Health, st.Problems = "degraded", []string{"hello.web crashed"}
	}
	if d.mode == fakeWaiting && len(d.final) > 0 {
		st.Health, st.Problems = "waiting", []string{"hello: waiting: warming up"}
	}
	if d.soured {
		st.Health, st.Problems = "error", []string{"hello: health check: connection refused"}
	}
	if d.mode == fakeFlooded {
		st.Metrics.RefusalsDropped = 4001
	}
	if d.mode == fakeHostile {
		st.Health, st.Problems, st.BaseSlot = hostileText, []string{hostileText}, hostileText
		st.Apps[0].Name = hostileText
	}
	f.mu.Unlock()
	data, _ := json.Marshal(st)
	return f.publish(mqtt.StateTopic(id), data, true)
}

func (f *fakeFleet) publish(topic string, payload []byte, retained bool) paho.Token {
	return f.client.Publish(topic, 1, retained, payload)
}

// onCommand checks that a command is a delegation then a command, and
// answers for each device it targets.
func (f *fakeFleet) onCommand(_ paho.Client, m paho.Message) {
	as, err := assert.DecodeBundle(m.Payload())
	if err != nil || len(as) != 2 || as[0].Type() != assert.AccountKeyType {
		f.t.Errorf("fake device got a bad bundle on %s: %v", m.Topic(), err)
		return
	}
	c, err := assert.ParseCommand(as[1])
	if err != nil {
		f.t.Errorf("fake device got a bad command: %v", err)
		return
	}
	kind, name := c.SplitTarget()
	f.mu.Lock()
	var targets []*fakeDevice
	if d := f.devs[name]; kind == assert.TargetDevice && d != nil {
		targets = append(targets, d)
	}
	for _, d := range f.devs {
		if kind == assert.TargetGroup && slices.Contains(d.groups, name) {
			targets = append(targets, d)
		}
	}
	f.mu.Unlock()
	for _, d := range targets {
		f.receive(d, c)
	}
}

// receive answers a command like a device: a command applied before gets
// its recorded answer again, marked replayed.
func (f *fakeFleet) receive(d *fakeDevice, c *assert.Command) {
	f.mu.Lock()
	d.received = append(d.received, c.ID)
	ev, applied := d.final[c.ID]
	mode := d.mode
	hold := mode == fakeHold
	if hold && !applied {
		d.held[c.ID] = c
	}
	f.mu.Unlock()
	switch {
	case applied:
		ev.Replayed = true
		f.event(d, ev)
	case !hold:
		f.apply(d, c, mode)
	}
}

// apply answers accepted, progress and the final event, then publishes a
// new state.
func (f *fakeFleet) apply(d *fakeDevice, c *assert.Command, mode string) {
	final := mqtt.Event{Command: c.ID, Type: mqtt.EventDone, Result: json.RawMessage(`"ok"`)}
	switch mode {
	case fakeFail:
		final = mqtt.Event{Command: c.ID, Type: mqtt.EventFailed, Message: "cannot download"}
	case fakeRefuse:
		final = mqtt.Event{Command: c.ID, Type: mqtt.EventRefused, Message: "bad signature"}
	case fakeHostile:
		final = mqtt.Event{Command: c.ID, Type: mqtt.EventFailed, Message: hostileText}
	case fakeReverted:
		final = mqtt.Event{Command: c.ID, Type: mqtt.EventFailed, Message: mqtt.RevertedPrefix + "health check failed: hello: GET /health: 500"}
	case fakeSoured:
		time.AfterFunc(300*time.Millisecond, func() {
			f.mu.Lock()
			d.soured = true
			f.mu.Unlock()
			f.publishState(d.id, time.Now())
		})
	}
	if mode == fakeFlooded {
		f.event(d, mqtt.Event{Type: mqtt.EventDropped, Count: 4001, Message: "4001 refusals dropped since 2030-01-01T00:00:00Z"})
	}
	step := "download"
	if mode == fakeHostile {
		step = hostileText
		f.event(d, mqtt.Event{Command: c.ID, Type: hostileText})
	}
	if final.Type != mqtt.EventRefused {
		f.event(d, mqtt.Event{Command: c.ID, Type: mqtt.EventAccepted})
		f.event(d, mqtt.Event{Command: c.ID, Type: mqtt.EventProgress, Step: step, Percent: 50})
	}
	f.mu.Lock()
	d.final[c.ID] = final
	f.mu.Unlock()
	f.publishState(d.id, time.Now())
	f.event(d, final)
}

func (f *fakeFleet) event(d *fakeDevice, ev mqtt.Event) {
	f.mu.Lock()
	d.seq++
	ev.Device, ev.Seq = d.id, d.seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	f.mu.Unlock()
	data, _ := json.Marshal(ev)
	f.publish(mqtt.EventsTopic(d.id), data, false) // never wait in a handler
}

// release makes held devices answer normally, applying what they hold.
func (f *fakeFleet) release() {
	f.mu.Lock()
	var todo []func()
	for _, d := range f.devs {
		if d.mode == fakeHold {
			d.mode = fakeDone
			for _, c := range d.held {
				todo = append(todo, func() { f.apply(d, c, fakeDone) })
			}
			d.held = map[string]*assert.Command{}
		}
	}
	f.mu.Unlock()
	for _, fn := range todo {
		fn()
	}
}

// received returns the command IDs a device received.
func (f *fakeFleet) received(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.devs[id].received)
}

// countReceived counts the devices that received at least one command.
func (f *fakeFleet) countReceived() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.devs {
		if len(d.received) > 0 {
			n++
		}
	}
	return n
}

// testEnv is a broker, a fake fleet, and an operator key with its
// delegation in a fresh key store.
type testEnv struct {
	broker     *mosquittotest.Broker
	fleet      *fakeFleet
	delegation string
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("PADDOCK_KEYS", filepath.Join(dir, "keys"))
	t.Setenv("PADDOCK_FLEET_DIR", filepath.Join(dir, "fleet"))
	t.Setenv("PADDOCK_BROKER", "")
	testutil.Replace(t, &quietPeriod, 200*time.Millisecond)
	testutil.Replace(t, &progressTick, 50*time.Millisecond)
	b := mosquittotest.Start(t)
	store, err := keys.DefaultStore()
	if err != nil {
		t.Fatal(err)
	}
	root, err := store.Create("root")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := store.Create("ops")
	if err != nil {
		t.Fatal(err)
	}
	a := asserttest.OperatorDelegation(t, root, ops, "device/*,group/*", func(ak *assert.AccountKey) {
		ak.Since, ak.Until = time.Now().Add(-time.Hour).UTC().Truncate(time.Second), time.Time{}
	})
	deleg := filepath.Join(dir, "ops.assert")
	testutil.WriteFile(t, deleg, string(a))
	return &testEnv{broker: b, fleet: startFakeFleet(t, b.URL()), delegation: deleg}
}

// opArgs are the options every send and rollout needs.
func (e *testEnv) opArgs() []string {
	return []string{"--broker", e.broker.URL(), "--key", "ops", "--delegation", e.delegation}
}
