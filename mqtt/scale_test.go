package mqtt

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
)

// TestMemoryPerLink starts PADDOCK_MQTT_LINKS links against one broker
// and reports the memory and goroutines each costs once connected. It is
// a measurement, not a check: it runs only when asked.
func TestMemoryPerLink(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PADDOCK_MQTT_LINKS"))
	if n <= 0 {
		t.Skip("set PADDOCK_MQTT_LINKS=1000 to measure the memory per link")
	}
	b := mosquittotest.Start(t)
	dir := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	links := make([]*Link, n)
	for i := range links {
		cfg := Config{Brokers: []string{b.URL()}, DeviceID: fmt.Sprint("d", i), Groups: []string{"lab"},
			StoreDir: fmt.Sprintf("%s/%d", dir, i), KeepAlive: time.Minute, MaxBackoff: time.Second, StateInterval: time.Hour}
		l, err := Start(context.Background(), cfg, newFakeDevice())
		if err != nil {
			t.Fatal(err)
		}
		links[i] = l
	}
	start := time.Now()
	for _, l := range links {
		for !l.Connected() {
			if time.Since(start) > 2*time.Minute {
				t.Fatal("links not connected within 2 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("%d links connected in %v", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the connect handlers finish
	runtime.GC()
	runtime.ReadMemStats(&after)
	g := runtime.NumGoroutine() - g0
	heap := after.HeapInuse - before.HeapInuse
	stack := after.StackInuse - before.StackInuse
	t.Logf("per link: heap %d B, stacks %d B, total %d B, %.1f goroutines",
		heap/uint64(n), stack/uint64(n), (heap+stack)/uint64(n), float64(g)/float64(n))
	if os.Getenv("PADDOCK_MQTT_GOROUTINES") != "" {
		buf := make([]byte, 64<<20)
		os.WriteFile(os.Getenv("PADDOCK_MQTT_GOROUTINES"), buf[:runtime.Stack(buf, true)], 0o644)
	}
	for _, l := range links {
		l.Close()
	}
}
