package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// realDevice is a device behind the real device-side link: Verify checks
// the signature chain with ota/trust, Apply does nothing but count.
type realDevice struct {
	id      string
	trusted []*keys.PublicKey
	delay   time.Duration // how long Apply takes
	mu      sync.Mutex
	applied map[string]int
	// fail, when set, is the error Apply answers with; sour, the health
	// problem the device reports a moment after it applied a command.
	fail, sour string
	health     []string // problems; none is health ok
	link       *mqtt.Link
}

func (d *realDevice) Verify(b []byte) (*mqtt.Command, error) {
	c, err := trust.CheckCommand(b, d.trusted, time.Now(), d.id, []string{"bench"})
	if err != nil {
		return nil, err
	}
	cmd := &mqtt.Command{ID: c.ID, Target: c.Target, Action: c.Action, Expiry: c.Expiry, Operator: c.Operator}
	return cmd, json.Unmarshal(c.Body, &cmd.Args)
}

func (d *realDevice) Apply(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	d.mu.Lock()
	d.applied[cmd.ID]++
	fail, sour := d.fail, d.sour
	d.mu.Unlock()
	time.Sleep(d.delay)
	if fail != "" {
		return nil, errors.New(fail)
	}
	if sour != "" {
		// Healthy first (the state after done), then not.
		time.AfterFunc(500*time.Millisecond, func() {
			d.mu.Lock()
			d.health = []string{sour}
			l := d.link
			d.mu.Unlock()
			l.Changed()
		})
	}
	return nil, nil
}

// Resume answers that nothing was started: this device makes no changes.
func (d *realDevice) Resume(context.Context, *mqtt.Command, string, func(string, int)) (json.RawMessage, error) {
	return nil, mqtt.ErrNoChange
}

func (d *realDevice) State() mqtt.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.health) > 0 {
		return mqtt.State{Health: "error", Problems: d.health}
	}
	return mqtt.State{Health: "ok"}
}

// realFleet is n devices, each with its own real mqtt.Link, in this process.
type realFleet struct {
	devs  []*realDevice
	links []*mqtt.Link
}

func startRealFleet(t testing.TB, e *testEnv, n int, delay time.Duration) *realFleet {
	t.Helper()
	raiseFileLimit(t, n+2048)
	store, err := keys.DefaultStore()
	if err != nil {
		t.Fatal(err)
	}
	root, err := store.Private("root")
	if err != nil {
		t.Fatal(err)
	}
	trusted := []*keys.PublicKey{root.Public()}
	dir := t.TempDir()
	f := &realFleet{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		var wg sync.WaitGroup
		for _, l := range f.links {
			wg.Go(func() { l.Close() })
		}
		wg.Wait()
	})
	for i := range n {
		d := &realDevice{id: fmt.Sprintf("dev%05d", i), trusted: trusted, delay: delay, applied: map[string]int{}}
		l, err := mqtt.Start(ctx, mqtt.Config{
			Brokers: []string{e.broker.URL()}, DeviceID: d.id, Groups: []string{"bench"},
			StoreDir: filepath.Join(dir, d.id), MaxBackoff: 2 * time.Second, StateInterval: time.Hour,
		}, d)
		if err != nil {
			t.Fatal(err)
		}
		d.link = l
		f.devs, f.links = append(f.devs, d), append(f.links, l)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, l := range f.links {
		for !l.Connected() {
			if time.Now().After(deadline) {
				t.Fatal("the links did not all connect within 2 minutes")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return f
}

// raiseFileLimit lets the process, and the broker it starts, hold n descriptors.
func raiseFileLimit(t testing.TB, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= uint64(n) {
		return
	}
	lim.Cur = max(lim.Cur, uint64(n))
	lim.Max = max(lim.Max, lim.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("needs %d file descriptors: %v", n, err)
	}
}

// checkExactlyOnce checks that every device applied exactly one command,
// exactly once.
func (f *realFleet) checkExactlyOnce(t testing.TB) {
	t.Helper()
	bad := 0
	for _, d := range f.devs {
		d.mu.Lock()
		ok := len(d.applied) == 1
		for _, n := range d.applied {
			ok = ok && n == 1
		}
		if !ok && bad < 5 {
			t.Errorf("%s applied %v, want one command once", d.id, d.applied)
		}
		if !ok {
			bad++
		}
		d.mu.Unlock()
	}
	if bad > 0 {
		t.Errorf("%d of %d devices did not apply exactly one command once", bad, len(f.devs))
	}
}

// realRollout rolls a ping out to the group with waves and returns the time it took.
func realRollout(t testing.TB, e *testEnv, stderr io.Writer) time.Duration {
	t.Helper()
	args := append(e.opArgs(), "--group", "bench", "--waves", "1%,10%,50%,100%", "--max-failures", "1%", "--timeout", "5m", "--wait", "5s", "ping")
	start := time.Now()
	if err := rollout(context.Background(), args, io.Discard, stderr); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	return time.Since(start)
}

// devicesFromEnv is the number of devices of the real-link rollout:
// PADDOCK_FLEET_DEVICES, or def.
func devicesFromEnv(def int) int {
	if n, err := strconv.Atoi(os.Getenv("PADDOCK_FLEET_DEVICES")); err == nil && n > 0 {
		return n
	}
	return def
}

// TestRolloutRealLinks rolls a command out to 1,000 devices, each with the
// real device-side link and real signature checks, against one mosquitto
// on loopback, and reports the time it took and the memory per link
// (PADDOCK_FLEET_DEVICES=10000 for the benchmark's size).
func TestRolloutRealLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a thousand MQTT sessions")
	}
	n := devicesFromEnv(1000)
	e := newTestEnv(t)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	connect := time.Now()
	f := startRealFleet(t, e, n, 0)
	connected := time.Since(connect)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	took := realRollout(t, e, io.Discard)
	f.checkExactlyOnce(t)
	perLink := (after.HeapInuse + after.StackInuse - before.HeapInuse - before.StackInuse) / uint64(n)
	t.Logf("%d devices: connected in %s; rollout (waves 1%%,10%%,50%%,100%%) start to all done in %s; %d KiB of heap and stacks per link",
		n, connected.Round(time.Millisecond), took.Round(time.Millisecond), perLink/1024)
	fmt.Fprintf(os.Stderr, "fleet: %d devices (real links), rollout start to all done: %.2f s (goal for 10,000: under 30 s); %d KiB per link; connect %.2f s\n",
		n, took.Seconds(), perLink/1024, connected.Seconds())
	latency(t, e, f)
}

// latency measures the round trip of a command to one device: from the
// operator's publish to the device's done event.
func latency(t testing.TB, e *testEnv, f *realFleet) {
	t.Helper()
	l, err := dial(e.broker.URL(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	op, err := loadOperator("ops", mustRead(t, e.delegation), "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 16)
	dev := f.devs[0].id
	err = l.subscribe(mqtt.EventsTopic(dev), func(_ paho.Client, m paho.Message) {
		var ev mqtt.Event
		if json.Unmarshal(m.Payload(), &ev) == nil && ev.Type == mqtt.EventDone {
			done <- ev.Command
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var rtts []time.Duration
	for range 100 {
		a, err := op.sign("device/"+dev, mqtt.ActionPing, mqtt.Args{}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := l.publishOne(mqtt.CmdTopic(dev), bundle(mustRead(t, e.delegation), a.Encode())); err != nil {
			t.Fatal(err)
		}
		for id := range done {
			if id == a.Header("id") {
				break
			}
		}
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	p50, p99 := rtts[len(rtts)/2], rtts[len(rtts)*99/100]
	t.Logf("command round trip: p50 %s, p99 %s", p50, p99)
	fmt.Fprintf(os.Stderr, "fleet: command round trip (publish to done, real link): p50 %.1f ms, p99 %.1f ms\n", ms(p50), ms(p99))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRolloutBrokerRestart kills the broker in the middle of a rollout to
// devices with the real link, and restarts it: every device still ends
// with the command applied exactly once.
func TestRolloutBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a broker under a rollout")
	}
	e := newTestEnv(t)
	testutil.Replace(t, &resendAfter, 2*time.Second)
	// Applying takes a second, so that the broker dies while the first
	// wave's devices work, and their answers go out while it is down.
	f := startRealFleet(t, e, 100, time.Second)
	errc := make(chan error, 1)
	go func() {
		args := append(e.opArgs(), "--group", "bench", "--waves", "10%,100%", "--max-failures", "0%", "--timeout", "2m", "--wait", "5s", "ping")
		errc <- rollout(context.Background(), args, io.Discard, io.Discard)
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("the rollout ended before the broker was killed: %v", err)
	default:
	}
	e.broker.Kill()
	time.Sleep(time.Second)
	e.broker.Restart()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("rollout across a broker restart: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the rollout did not finish within 3 minutes of the broker's restart")
	}
	f.checkExactlyOnce(t)
}
