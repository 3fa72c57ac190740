package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/mosquittotest"
)

var _ Device = (*fakeDevice)(nil)

// fakeBundle is what the fake Verify accepts instead of a signed bundle.
type fakeBundle struct {
	ID     string    `json:"id"`
	Target string    `json:"target"`
	Action string    `json:"action"`
	Expiry time.Time `json:"expiry"`
	Args   Args      `json:"args"`
	Refuse string    `json:"refuse,omitempty"` // Verify fails with this message
}

func bundle(id string) fakeBundle {
	return fakeBundle{ID: id, Target: "device/dev1", Action: ActionPing, Expiry: time.Now().Add(time.Hour)}
}

func (b fakeBundle) bytes() []byte {
	j, _ := json.Marshal(b)
	return j
}

// fakeDevice applies commands by calling progress twice; the command
// named "block" waits for release (or the context) in between.
type fakeDevice struct {
	mu      sync.Mutex
	applied []string
	apps    []AppState
	release chan struct{}
	// gate, when set, holds Verify of the command "gate" until closed.
	gate    chan struct{}
	refused atomic.Int64 // Verify's refusals
	// changes are the outcomes of the changes that commands named
	// "change" start (by change id), and resumed the commands Resume
	// answered.
	changes map[string]error
	resumed []string
}

func newFakeDevice() *fakeDevice { return &fakeDevice{release: make(chan struct{})} }

func (d *fakeDevice) Verify(b []byte) (*Command, error) {
	var fb fakeBundle
	if err := json.Unmarshal(b, &fb); err != nil {
		d.refused.Add(1)
		return nil, fmt.Errorf("cannot decode command bundle: %w", err)
	}
	if fb.ID == "gate" && d.gate != nil {
		<-d.gate
	}
	if fb.Refuse != "" {
		d.refused.Add(1)
		return &Command{ID: fb.ID}, errors.New(fb.Refuse)
	}
	app, _, _ := strings.Cut(fb.Args.Name, ":")
	return &Command{ID: fb.ID, Target: fb.Target, Action: fb.Action, Expiry: fb.Expiry, Args: fb.Args, Operator: "test", App: app}, nil
}

func (d *fakeDevice) Apply(ctx context.Context, cmd *Command, progress func(string, int)) (json.RawMessage, error) {
	d.mu.Lock()
	d.applied = append(d.applied, cmd.ID)
	d.mu.Unlock()
	progress("download", 10)
	if cmd.Args.Value != "" { // the change it starts
		if err := cmd.Started(cmd.Args.Value); err != nil {
			return nil, err
		}
	}
	if cmd.Args.Name == "block" {
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		time.Sleep(progressEvery + 10*time.Millisecond)
		progress("install", 90)
	}
	if cmd.Action == ActionRemove {
		return nil, fmt.Errorf("cannot remove %s: not installed", cmd.Args.Name)
	}
	return json.RawMessage(`{"pong":"` + cmd.ID + `"}`), nil
}

// Resume answers with the outcome of the change a command started, if
// the fake knows it (setChange).
func (d *fakeDevice) Resume(ctx context.Context, cmd *Command, change string, progress func(string, int)) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resumed = append(d.resumed, cmd.ID+"@"+change)
	err, ok := d.changes[change]
	switch {
	case !ok:
		return nil, ErrNoChange
	case err != nil:
		return nil, err
	}
	return json.RawMessage(`{"change":"` + change + `"}`), nil
}

func (d *fakeDevice) setChange(id string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changes == nil {
		d.changes = map[string]error{}
	}
	d.changes[id] = err
}

func (d *fakeDevice) resumedIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.resumed...)
}

func (d *fakeDevice) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{Apps: append([]AppState(nil), d.apps...), Health: "ok"}
}

func (d *fakeDevice) setApps(apps ...AppState) {
	d.mu.Lock()
	d.apps = apps
	d.mu.Unlock()
}

func (d *fakeDevice) appliedIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.applied...)
}

// testConfig is a link config with short delays, for device dev1 in group lab.
func testConfig(t *testing.T, url, dir string) Config {
	return Config{
		Brokers: []string{url}, DeviceID: "dev1", Groups: []string{"lab"}, StoreDir: dir,
		KeepAlive: 2 * time.Second, MaxBackoff: 200 * time.Millisecond, StateInterval: time.Hour,
		Logf: testLogf(t), AgentVersion: "test",
	}
}

// testLogf logs to t until the test ends, and to nowhere after.
func testLogf(t *testing.T) func(string, ...any) {
	var over atomic.Bool
	t.Cleanup(func() { over.Store(true) })
	return func(format string, args ...any) {
		if !over.Load() {
			t.Logf(format, args...)
		}
	}
}

func startLink(t *testing.T, cfg Config, dev Device) *Link {
	t.Helper()
	l, err := Start(context.Background(), cfg, dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// watcher is a plain paho client that watches dev1's topics.
type watcher struct {
	c        paho.Client
	events   chan Event
	presence chan Presence
	states   chan State
}

// watch connects a watcher; with a non-empty id it keeps a persistent
// session. It subscribes in its connect handler, so it survives restarts.
func watch(t *testing.T, url, id string) *watcher {
	t.Helper()
	w := &watcher{events: make(chan Event, 100), presence: make(chan Presence, 100), states: make(chan State, 100)}
	o := paho.NewClientOptions().AddBroker(url).SetProtocolVersion(4).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(100 * time.Millisecond)
	if id != "" {
		o.SetClientID(id).SetCleanSession(false)
	}
	// A persistent session delivers queued messages before the connect
	// handler subscribes again: the default handler takes them.
	o.SetDefaultPublishHandler(w.take)
	o.SetOnConnectHandler(func(c paho.Client) {
		c.SubscribeMultiple(map[string]byte{EventsTopic("dev1"): 1, OnlineTopic("dev1"): 1, StateTopic("dev1"): 1}, w.take)
	})
	w.c = paho.NewClient(o)
	if tok := w.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher cannot connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(0) })
	return w
}

func (w *watcher) take(_ paho.Client, m paho.Message) {
	switch {
	case strings.HasSuffix(m.Topic(), "/events"):
		var ev Event
		json.Unmarshal(m.Payload(), &ev)
		w.events <- ev
	case strings.HasSuffix(m.Topic(), "/online"):
		var p Presence
		json.Unmarshal(m.Payload(), &p)
		w.presence <- p
	case strings.HasSuffix(m.Topic(), "/state"):
		var s State
		json.Unmarshal(m.Payload(), &s)
		w.states <- s
	}
}

// send publishes a command bundle to topic.
func (w *watcher) send(t *testing.T, topic string, b []byte) {
	t.Helper()
	if tok := w.c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cannot send to %s: %v", topic, tok.Error())
	}
}

// next returns the next event, failing the test after a few seconds.
func (w *watcher) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}

// expect reads events and checks their command, types and order.
func (w *watcher) expect(t *testing.T, cmd string, types ...string) []Event {
	t.Helper()
	var got []Event
	for _, typ := range types {
		ev := w.next(t)
		if ev.Command != cmd || ev.Type != typ {
			t.Fatalf("got event %s %s (%q), want %s %s", ev.Command, ev.Type, ev.Message, cmd, typ)
		}
		if ev.Device != "dev1" {
			t.Errorf("got device %q, want dev1", ev.Device)
		}
		if len(got) > 0 && ev.Seq <= got[len(got)-1].Seq {
			t.Errorf("got seq %d after %d, want increasing", ev.Seq, got[len(got)-1].Seq)
		}
		got = append(got, ev)
	}
	return got
}

// waitPresence waits for a presence message saying online.
func (w *watcher) waitPresence(t *testing.T, online bool, since time.Time) Presence {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-w.presence:
			if p.Online == online && (!online || !p.Time.Before(since)) {
				return p
			}
		case <-deadline:
			t.Fatalf("no presence online=%v within 10s", online)
		}
	}
}

// waitState waits for a state for which ok is true.
func (w *watcher) waitState(t *testing.T, ok func(State) bool) State {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-w.states:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatal("no matching state within 10s")
		}
	}
}

// proxy forwards loopback TCP connections to a broker and can cut them
// abruptly, as a lost network would.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	paused bool // connections are refused (closed at once)
}

func startProxy(t *testing.T, b *mosquittotest.Broker) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", strings.TrimPrefix(b.URL(), "tcp://"))
			if err != nil {
				c.Close()
				continue
			}
			// Checked with the connection kept under one lock, so that a
			// pause either sees it or is seen by it.
			p.mu.Lock()
			if p.paused {
				p.mu.Unlock()
				s.Close()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// pause makes the broker unreachable through the proxy (paused) or
// reachable again; pausing drops the open connections.
func (p *proxy) pause(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = paused
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// cut stops accepting and closes every connection without a word.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
