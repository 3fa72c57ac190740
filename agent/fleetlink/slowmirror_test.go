package fleetlink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/fetch"
)

// trickle serves an artifact announced at full size, one byte every
// 50ms, until the client goes away.
func trickle(t *testing.T, size int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.WriteHeader(http.StatusOK)
		for range size {
			w.Write([]byte{0})
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// events subscribes to dev1's events on the broker.
func events(t *testing.T, url string) <-chan mqtt.Event {
	ch := make(chan mqtt.Event, 100)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cannot connect to the broker: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(mqtt.EventsTopic("dev1"), 1, func(_ paho.Client, m paho.Message) {
		var ev mqtt.Event
		if json.Unmarshal(m.Payload(), &ev) == nil {
			ch <- ev
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("cannot subscribe: %v", tok.Error())
	}
	return ch
}

// Regression: an install from a mirror that trickles a byte every few
// seconds held the link's only worker: a ping or a command for another
// app sent after it waited until the download ended, which it never did.
// Now the ping and the other app's command are answered while the
// download of hello trickles, and the download fails for being too slow,
// with the window the command asked for.
func TestSlowMirrorDoesNotStallTheFleet(t *testing.T) {
	f := newFixture(t)
	b := mosquittotest.Start(t)
	evs := events(t, b.URL())
	content := strings.Repeat("x", 64<<10)
	sum := sha256.Sum256([]byte(content))
	rev := asserttest.Revision(t, f.pub, "hello", func(r *assert.AppRevision) {
		r.Revision, r.Arch, r.Size, r.SHA256, r.Timestamp = 1, "all", int64(len(content)), hex.EncodeToString(sum[:]), time.Now().UTC().Truncate(time.Second)
	})
	f.dev.Download = fetch.Limits{RateWindow: time.Hour} // the command sets a shorter one
	link, err := mqtt.Start(context.Background(), mqtt.Config{Brokers: []string{b.URL()}, DeviceID: "dev1", Groups: []string{"lab"},
		StoreDir: t.TempDir(), StateInterval: time.Hour, MaxBackoff: 200 * time.Millisecond}, f.dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	testutil.WaitFor(t, "the link connected", 10*time.Second, link.Connected)
	time.Sleep(200 * time.Millisecond) // its subscriptions

	hour := time.Now().Add(time.Hour)
	body, _ := json.Marshal(mqtt.Args{Assertions: string(asserttest.Bundle(f.pubDeleg, rev)),
		URLs: []string{trickle(t, len(content)).URL + "/hello.pdk"}, Download: &mqtt.DownloadLimits{RateWindow: "500ms"}})
	send := func(id, action, body string) {
		tok := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()))
		if c := tok.Connect(); !c.WaitTimeout(5*time.Second) || c.Error() != nil {
			t.Fatalf("cannot connect: %v", c.Error())
		}
		defer tok.Disconnect(0)
		p := tok.Publish(mqtt.CmdTopic("dev1"), 1, false, command(t, f.ops, f.opsDeleg, id, "device/dev1", action, body, hour))
		if !p.WaitTimeout(5*time.Second) || p.Error() != nil {
			t.Fatalf("cannot send %s: %v", id, p.Error())
		}
	}
	send("i1", mqtt.ActionInstall, string(body))
	// The download of hello has started before the others are sent.
	next := func() mqtt.Event {
		select {
		case ev := <-evs:
			return ev
		case <-time.After(15 * time.Second):
			t.Fatal("no event within 15s")
			return mqtt.Event{}
		}
	}
	for ev := next(); ev.Command != "i1" || ev.Type != mqtt.EventAccepted; ev = next() {
	}
	sent := time.Now()
	send("p1", mqtt.ActionPing, "")
	send("r1", mqtt.ActionRemove, `{"name":"other"}`)
	finals := map[string]mqtt.Event{}
	var order []string
	for len(finals) < 3 {
		ev := next()
		if ev.Final() {
			finals[ev.Command] = ev
			order = append(order, ev.Command)
		}
	}
	t.Logf("answered in order %v; i1: %s", order, finals["i1"].Message)
	if order[2] != "i1" {
		t.Errorf("got answers in order %v, want p1 and r1 before i1, whose download trickles", order)
	}
	if ev := finals["p1"]; ev.Type != mqtt.EventDone || !strings.Contains(string(ev.Result), "pong") {
		t.Errorf("ping: got %+v, want done", ev)
	}
	if ev := finals["r1"]; ev.Type != mqtt.EventFailed || !strings.Contains(ev.Message, "not installed") {
		t.Errorf("remove of another app: got %+v, want its own answer (not installed)", ev)
	}
	if ev := finals["i1"]; ev.Type != mqtt.EventFailed || !strings.Contains(ev.Message, "below the minimum of 1.0 KiB/s") {
		t.Errorf("install from the trickling mirror: got %+v, want failed below the minimum rate", ev)
	}
	if took := time.Since(sent); took > 12*time.Second {
		t.Errorf("got the answers after %v, want a few seconds (4 attempts of a 500ms window)", took)
	}
}
