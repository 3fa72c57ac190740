package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Device is what the agent gives the link; the link never imports the agent.
type Device interface {
	// Verify checks a command bundle (signature chain, target, time
	// window) and returns the command. An error means "refused" with the
	// error's message; a partially filled *Command returned with the
	// error names the refused command.
	Verify(bundle []byte) (*Command, error)
	// Apply carries out a verified command, reporting progress; it
	// returns the result (JSON, may be nil) or an error (failed). It is
	// called for several commands at once when they concern different
	// apps (Command.App), and for pings while anything else runs.
	// A command that starts a change of the agent calls cmd.Started
	// with the change's id once it exists.
	Apply(ctx context.Context, cmd *Command, progress func(step string, percent int)) (json.RawMessage, error)
	// Resume answers a command that was being applied when the agent
	// stopped: it waits for the change the command started (change, the
	// id given to Started, or "" when the stop came before it was
	// recorded: the device finds the change by the command's id) and
	// returns its outcome as Apply would. It returns ErrNoChange when the
	// command started no change, which the link answers "failed:
	// interrupted by a restart".
	Resume(ctx context.Context, cmd *Command, change string, progress func(step string, percent int)) (json.RawMessage, error)
	// State returns the current state to publish; the link fills in
	// Device, Groups, Time, Metrics and, when empty, AgentVersion.
	State() State
}

// Command is a verified command, as Device.Verify returns it.
type Command struct {
	ID       string
	Target   string // device/ID or group/NAME
	Action   string
	Expiry   time.Time
	Args     Args // decoded from the assertion's body
	Operator string
	// App is the app the command concerns, which Verify fills in for
	// app commands: commands for different apps run at the same time,
	// those for one app in arrival order. Left empty, an app command
	// runs alone, as base-update and reboot do.
	App string

	// started records the change the command started (set by the link).
	started func(change string) error
	// resumed marks a command found in progress at a start, and change
	// is the change it had started, if recorded.
	resumed bool
	change  string
}

// ErrNoChange is Device.Resume's answer for a command that started no
// change of the agent before it stopped.
var ErrNoChange = errors.New("the command started no change")

// Started records that the command started the change of the agent with
// the given id: the command's answer is that change's outcome, also after
// the agent restarts (see Device.Resume). Apply calls it once the change
// exists, before waiting for it. An error means the record could not be
// written; the change goes on.
func (c *Command) Started(change string) error {
	if c.started == nil {
		return nil
	}
	return c.started(change)
}

// Config configures a Link.
type Config struct {
	// Brokers are tcp://host:port or ssl://host:port, tried in order.
	Brokers  []string
	DeviceID string
	Groups   []string
	// StoreDir holds the persistent MQTT session, the record of applied
	// commands and the queue of undelivered events.
	StoreDir string
	// TLS holds the client certificates for ssl:// brokers.
	TLS *tls.Config
	// KeepAlive is the MQTT keep-alive (default 60s).
	KeepAlive time.Duration
	// MaxBackoff caps the delay between connection attempts (default 2m).
	MaxBackoff time.Duration
	// StateInterval is how often the state is republished with fresh
	// metrics (default 10m); it is also republished on Changed.
	StateInterval time.Duration
	// Logf logs connection changes and errors (nil: silent).
	Logf         func(format string, args ...any)
	AgentVersion string
}

const (
	debounceDelay  = 200 * time.Millisecond
	publishTimeout = 10 * time.Second
	connectTimeout = 10 * time.Second
	closeQuiesce   = 250 // milliseconds
)

// Link is the device side of the fleet link: one persistent MQTT session.
//
// Delivery: commands are acknowledged to the broker only once recorded in
// StoreDir/applied.log, so a crash before that has them delivered again;
// commands for different apps then run at the same time, those for one
// app in arrival order, and pings at once (see schedule.go);
// a command is applied at most once (a repeat is answered with its
// recorded final event, marked replayed). A command found in progress at
// Start was cut short by a crash or a stop: it is never applied again.
// If it had started a change of the agent (Command.Started), which goes
// on after the restart, the link waits for that change and answers its
// outcome, once; otherwise it answers "failed: interrupted by a restart",
// since it may have half happened, and the operator decides. Events are
// delivered at least once, in order of Seq; the operator drops duplicates
// by (device, seq).
//
// An idle link owns no goroutine (paho's are its only ones) and two
// stopped-or-pending timers, and writes to disk only when an event or a
// command needs it.
type Link struct {
	cfg    Config
	dev    Device
	client paho.Client
	ctx    context.Context
	cancel context.CancelFunc
	stopCh func() bool // stops the context.AfterFunc that closes the link
	wg     sync.WaitGroup
	retry  chan struct{} // Retry: try the first connection now

	mu         sync.Mutex // guards the fields below
	closed     bool
	down       chan struct{} // closed when the current connection is lost
	pending    []paho.Message
	working    bool
	queued     []*job          // accepted commands waiting for their turn
	lanes      map[string]bool // lanes with a command running
	running    int             // commands running, pings aside
	exclusive  bool            // a command for the whole device runs
	reconnects int
	changed    bool
	debounce   *time.Timer
	tick       *time.Timer

	evMu    sync.Mutex // orders events: numbering, publishing, queueing
	seq     *seqCounter
	queue   *eventQueue
	applied *appliedLog

	stateMu sync.Mutex // one state publication at a time
}

// Start starts the link and returns at once: it connects in the
// background and keeps trying while no broker answers. It stops when ctx
// is done or Close is called.
func Start(ctx context.Context, cfg Config, dev Device) (*Link, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if dev == nil {
		return nil, errors.New("internal error: mqtt link started without a device")
	}
	cfg.setDefaults()
	session := filepath.Join(cfg.StoreDir, "session")
	if err := os.MkdirAll(session, 0o700); err != nil {
		return nil, fmt.Errorf("cannot start the fleet link: %w", err)
	}
	l := &Link{cfg: cfg, dev: dev, down: closedChan(), retry: make(chan struct{}, 1)}
	var err error
	if l.queue, err = loadEventQueue(filepath.Join(cfg.StoreDir, "events.queue"), l.logf); err != nil {
		return nil, err
	}
	if l.seq, err = loadSeq(filepath.Join(cfg.StoreDir, "seq"), l.queue.maxSeq()); err != nil {
		return nil, err
	}
	if l.applied, err = loadApplied(cfg.StoreDir, l.logf); err != nil {
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.client = paho.NewClient(l.options(session))
	l.recoverInterrupted()
	l.mu.Lock()
	l.tick = time.AfterFunc(jittered(cfg.StateInterval), l.onTick)
	l.mu.Unlock()
	l.wg.Add(1)
	go l.connectLoop()
	l.stopCh = context.AfterFunc(ctx, func() { l.Close() })
	return l, nil
}

func (c *Config) check() error {
	if len(c.Brokers) == 0 {
		return errors.New("cannot start the fleet link: no broker configured")
	}
	if err := checkName("device id", c.DeviceID); err != nil {
		return err
	}
	for _, g := range c.Groups {
		if err := checkName("group", g); err != nil {
			return err
		}
	}
	if c.StoreDir == "" {
		return errors.New("cannot start the fleet link: no store directory configured")
	}
	return nil
}

// checkName refuses names that would change the meaning of a topic.
func checkName(what, name string) error {
	if name == "" || strings.ContainsAny(name, "/+#\x00") {
		return fmt.Errorf("cannot start the fleet link: invalid %s %q (it must be non-empty, without / + # or NUL)", what, name)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.KeepAlive <= 0 {
		c.KeepAlive = 60 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 2 * time.Minute
	}
	if c.StateInterval <= 0 {
		c.StateInterval = 10 * time.Minute
	}
}

func (l *Link) options(session string) *paho.ClientOptions {
	o := paho.NewClientOptions()
	for _, b := range l.cfg.Brokers {
		o.AddBroker(b)
	}
	will, _ := json.Marshal(Presence{Online: false}) // the broker sends it: the time is unknown
	o.SetClientID("paddock-"+l.cfg.DeviceID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetStore(paho.NewFileStore(session)).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(min(l.cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(publishTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(l.cfg.MaxBackoff).
		SetBinaryWill(OnlineTopic(l.cfg.DeviceID), will, 1, true).
		SetOnConnectHandler(l.onConnect).
		SetConnectionLostHandler(l.onLost).
		SetReconnectingHandler(l.onReconnecting).
		// Messages of the persistent session may arrive before the
		// subscriptions are made again: the default handler takes them.
		SetDefaultPublishHandler(l.onMessage).
		// A command is acknowledged once it is recorded, so that a crash
		// before that has the broker deliver it again.
		SetAutoAckDisabled(true).
		SetOrderMatters(true)
	if l.cfg.TLS != nil {
		o.SetTLSConfig(l.cfg.TLS)
	}
	return o
}

// Connected reports whether the link has a connection to a broker now.
func (l *Link) Connected() bool { return l.client.IsConnectionOpen() }

// Close publishes the device offline (retained), waits for the commands
// being applied to stop, and disconnects cleanly. A command interrupted
// by Close is reported failed by the next Start; one still waiting for
// its turn is reported failed, not started, at once.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.tick.Stop()
	if l.debounce != nil {
		l.debounce.Stop()
	}
	l.mu.Unlock()
	if l.stopCh != nil {
		l.stopCh()
	}
	l.cancel()
	l.wg.Wait()
	l.failQueued()
	l.evMu.Lock()
	l.reportDroppedLocked() // queued on disk if it cannot go now
	l.evMu.Unlock()
	var err error
	if l.client.IsConnectionOpen() {
		p, _ := json.Marshal(Presence{Online: false, Time: time.Now().UTC()})
		tok := l.client.Publish(OnlineTopic(l.cfg.DeviceID), 1, true, p)
		if !tok.WaitTimeout(publishTimeout) {
			err = errors.New("cannot publish the device offline: timeout")
		} else if tok.Error() != nil {
			err = fmt.Errorf("cannot publish the device offline: %w", tok.Error())
		}
	}
	l.client.Disconnect(closeQuiesce)
	return err
}

// connectLoop makes the first connection, retrying with backoff and
// jitter; later losses are paho's auto-reconnect's business.
func (l *Link) connectLoop() {
	defer l.wg.Done()
	for attempt := 0; ; attempt++ {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		tok := l.client.Connect()
		l.mu.Unlock()
		select {
		case <-tok.Done():
		case <-l.ctx.Done():
			return
		}
		if tok.Error() == nil {
			return
		}
		if attempt&(attempt-1) == 0 { // 0, 1, 2, 4, 8...: do not flood the console
			l.logf("mqtt: cannot connect to %s (attempt %d, still trying): %v", strings.Join(l.cfg.Brokers, ", "), attempt+1, tok.Error())
		}
		if !l.sleepOrRetry(l.backoff(attempt)) {
			return
		}
	}
}

// Retry makes a link that waits to try its first connection again try
// now: the agent calls it when the network comes up, so the link does not
// sleep out a backoff of up to MaxBackoff. Once connected, a lost
// connection is paho's to restore, and Retry does nothing.
func (l *Link) Retry() {
	select {
	case l.retry <- struct{}{}:
	default:
	}
}

// sleepOrRetry is sleep, cut short by Retry.
func (l *Link) sleepOrRetry(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.retry:
	case <-l.ctx.Done():
		return false
	}
	return true
}

// backoffBase is the first connection's first backoff (tests lengthen it).
var backoffBase = time.Second

// backoff is the delay before attempt+1: doubling from 1s, capped at
// MaxBackoff, half of it random ("equal jitter").
func (l *Link) backoff(attempt int) time.Duration {
	d := min(backoffBase<<min(attempt, 20), l.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// onReconnecting runs before each of paho's reconnection attempts, which
// double up to MaxBackoff; a random delay on top spreads a fleet that lost
// its broker at the same moment.
func (l *Link) onReconnecting(paho.Client, *paho.ClientOptions) {
	l.mu.Lock()
	n := l.reconnects
	l.reconnects++
	l.mu.Unlock()
	d := min(time.Second<<min(n, 20), l.cfg.MaxBackoff)
	l.sleep(rand.N(d + 1))
}

// sleep waits d or until the link closes; it reports whether d passed.
func (l *Link) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

func (l *Link) onConnect(c paho.Client) {
	l.mu.Lock()
	l.reconnects = 0
	down := make(chan struct{})
	l.down = down
	l.mu.Unlock()
	filters := map[string]byte{CmdTopic(l.cfg.DeviceID): 1}
	for _, g := range l.cfg.Groups {
		filters[GroupTopic(g)] = 1
	}
	if r := l.wait(c.SubscribeMultiple(filters, l.onMessage), down, l.ctx.Done()); r != sent {
		l.logf("mqtt: cannot subscribe to the command topics (will retry on reconnect)")
		return
	}
	l.logf("mqtt: connected")
	p, _ := json.Marshal(Presence{Online: true, Time: time.Now().UTC()})
	l.publish(OnlineTopic(l.cfg.DeviceID), p, true)
	l.publishState()
	l.evMu.Lock()
	l.flushLocked()
	l.evMu.Unlock()
}

func (l *Link) onLost(_ paho.Client, err error) {
	l.mu.Lock()
	select {
	case <-l.down:
	default:
		close(l.down)
	}
	l.mu.Unlock()
	l.logf("mqtt: connection lost (reconnecting): %v", err)
}

// publishResult says what became of a publication.
type publishResult int

const (
	sent       publishResult = iota // acknowledged by the broker
	handedOver                      // in paho's persistent store, sent again on reconnect
	failed                          // not stored: the caller keeps it
)

// publish publishes payload with QoS 1 if the link is connected.
func (l *Link) publish(topic string, payload []byte, retained bool) publishResult {
	l.mu.Lock()
	down := l.down
	l.mu.Unlock()
	if !l.client.IsConnectionOpen() {
		return failed
	}
	return l.wait(l.client.Publish(topic, 1, retained, payload), down, l.ctx.Done())
}

// wait waits for tok until it completes, the connection is lost, stop
// is closed or publishTimeout passes.
func (l *Link) wait(tok paho.Token, down, stop <-chan struct{}) publishResult {
	t := time.NewTimer(publishTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			return failed
		}
		return sent
	case <-down:
	case <-stop:
	case <-t.C:
	}
	return handedOver
}

func (l *Link) logf(format string, args ...any) {
	if l.cfg.Logf != nil {
		l.cfg.Logf(format, args...)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// jittered returns d ± 10%, so that links started together do not
// publish together.
func jittered(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
