package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/mqtt"
)

// Topic filters over every device.
const (
	allEvents = mqtt.TopicPrefix + "devices/+/events"
	allStates = mqtt.TopicPrefix + "devices/+/state"
	allOnline = mqtt.TopicPrefix + "devices/+/online"
)

var (
	// connectTimeout bounds the first connection to the broker.
	connectTimeout = 10 * time.Second
	// ackTimeout bounds the wait for a SUBACK or a PUBACK.
	ackTimeout = 30 * time.Second
	// publishWindow is how many commands may await their PUBACK at once.
	publishWindow = 512
)

// link is the operator's one MQTT session. Its subscriptions are made
// again after a reconnect (the session is clean: nothing lingers on the
// broker after the command ends).
type link struct {
	client paho.Client
	stderr io.Writer

	mu   sync.Mutex
	subs map[string]paho.MessageHandler
	// closed ends the handlers still waiting to hand a message over.
	closed chan struct{}
}

// dial connects to broker.
func dial(broker string, stderr io.Writer) (*link, error) {
	l := &link{stderr: stderr, subs: map[string]paho.MessageHandler{}, closed: make(chan struct{})}
	first := true
	opts := paho.NewClientOptions().AddBroker(broker).
		SetClientID("paddock-fleet-" + randomHex(6)).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			fmt.Fprintf(stderr, "warning: lost the connection to %s: %v (reconnecting)\n", broker, err)
		}).
		SetOnConnectHandler(func(paho.Client) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if first {
				first = false
				return
			}
			for filter, h := range l.subs {
				l.client.Subscribe(filter, 1, h)
			}
		})
	l.client = paho.NewClient(opts)
	tok := l.client.Connect()
	if !tok.WaitTimeout(connectTimeout + time.Second) {
		return nil, fmt.Errorf("cannot connect to broker %s: no answer within %s", broker, connectTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("cannot connect to broker %s: %w (check --broker)", broker, err)
	}
	return l, nil
}

// close disconnects, leaving a moment for what is in flight.
func (l *link) close() {
	close(l.closed)
	l.client.Disconnect(250)
}

// subscribe subscribes to filter at QoS 1 and waits for the broker's
// acknowledgement, so that what is published next reaches h.
func (l *link) subscribe(filter string, h paho.MessageHandler) error {
	l.mu.Lock()
	l.subs[filter] = h
	l.mu.Unlock()
	tok := l.client.Subscribe(filter, 1, h)
	if !tok.WaitTimeout(ackTimeout) {
		return fmt.Errorf("cannot subscribe to %s: no answer within %s", filter, ackTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", filter, err)
	}
	return nil
}

// publishOne publishes payload at QoS 1 and waits for the PUBACK.
func (l *link) publishOne(topic string, payload []byte) error {
	w := newWindow(l, 1)
	w.publish(topic, payload)
	return w.wait()
}

// window publishes at QoS 1 with up to a bounded number of messages
// awaiting their PUBACK, rather than one at a time.
type window struct {
	l   *link
	sem chan struct{}
	wg  sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newWindow(l *link, n int) *window {
	return &window{l: l, sem: make(chan struct{}, n)}
}

// publish sends payload to topic once a slot is free; it returns the first
// error of any publish so far.
func (w *window) publish(topic string, payload []byte) error {
	if err := w.error(); err != nil {
		return err
	}
	w.sem <- struct{}{}
	tok := w.l.client.Publish(topic, 1, false, payload)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		if !tok.WaitTimeout(ackTimeout) {
			w.fail(fmt.Errorf("cannot publish to %s: no acknowledgement within %s", topic, ackTimeout))
		} else if err := tok.Error(); err != nil {
			w.fail(fmt.Errorf("cannot publish to %s: %w", topic, err))
		}
	}()
	return nil
}

func (w *window) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *window) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait waits for every PUBACK and returns the first error.
func (w *window) wait() error {
	w.wg.Wait()
	return w.error()
}

// topicDevice returns the device ID of a devices/ID/KIND topic, or "".
func topicDevice(topic string) string {
	rest, ok := strings.CutPrefix(topic, mqtt.TopicPrefix+"devices/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return id
}

// inbound is a message from a device, decoded: an event or a state.
type inbound struct {
	device string
	event  *mqtt.Event
	state  *mqtt.State
}

// eventHandler decodes events into ch, dropping what does not decode:
// the broker is not trusted, and one bad device must not stop the rest.
func (l *link) eventHandler(ch chan<- inbound) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		var ev mqtt.Event
		id := topicDevice(m.Topic())
		if id == "" || json.Unmarshal(m.Payload(), &ev) != nil {
			return
		}
		l.hand(ch, inbound{device: id, event: &ev})
	}
}

// stateHandler decodes states into ch.
func (l *link) stateHandler(ch chan<- inbound) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		var st mqtt.State
		id := topicDevice(m.Topic())
		if id == "" || len(m.Payload()) == 0 || json.Unmarshal(m.Payload(), &st) != nil {
			return
		}
		l.hand(ch, inbound{device: id, state: &st})
	}
}

// hand passes m on, unless the link is closed.
func (l *link) hand(ch chan<- inbound, m inbound) {
	select {
	case ch <- m:
	case <-l.closed:
	}
}
