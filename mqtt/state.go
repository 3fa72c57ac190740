package mqtt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/internal/diskfree"
)

// procDir is where the metrics are read; tests point it elsewhere.
var procDir = "/proc"

// Changed tells the link that the device state changed: the state is
// republished once the changes settle (debounced).
func (l *Link) Changed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.changed {
		return
	}
	l.changed = true
	if l.debounce == nil {
		l.debounce = time.AfterFunc(debounceDelay, l.onDebounce)
		return
	}
	l.debounce.Reset(debounceDelay)
}

func (l *Link) onDebounce() {
	l.mu.Lock()
	l.changed = false
	l.mu.Unlock()
	l.publishState()
}

// onTick republishes the state with fresh metrics every StateInterval.
func (l *Link) onTick() {
	l.publishState()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.tick.Reset(jittered(l.cfg.StateInterval))
	}
}

// publishState publishes the state, retained, if the link is connected;
// otherwise the next connection publishes it.
func (l *Link) publishState() {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.ctx.Err() != nil || !l.client.IsConnectionOpen() {
		return
	}
	st := l.dev.State()
	st.Device = l.cfg.DeviceID
	st.Groups = l.cfg.Groups
	st.Time = timeNow().UTC()
	if st.AgentVersion == "" {
		st.AgentVersion = l.cfg.AgentVersion
	}
	st.Metrics = readMetrics(l.cfg.StoreDir)
	st.Metrics.RefusalsDropped = l.queue.refusalsDropped.Load()
	st.Metrics.AnswersDropped = l.queue.answersDropped.Load()
	b, err := json.Marshal(st)
	if err != nil {
		l.logf("mqtt: internal error: cannot encode the state: %v", err)
		return
	}
	if l.publish(StateTopic(l.cfg.DeviceID), b, true) == failed {
		l.logf("mqtt: cannot publish the state (will retry on reconnect)")
	}
}

// readMetrics reads light figures; one it cannot read stays zero.
func readMetrics(storeDir string) Metrics {
	var m Metrics
	m.Uptime = firstFloat(filepath.Join(procDir, "uptime"))
	m.Load1 = firstFloat(filepath.Join(procDir, "loadavg"))
	m.MemAvailable = memAvailable(filepath.Join(procDir, "meminfo"))
	if sp, err := diskfree.Of(storeDir); err == nil {
		m.DiskFree = uint64(max(sp.Bytes, 0)) // left to unprivileged writers
	}
	return m
}

func firstFloat(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// memAvailable reads "MemAvailable:  123456 kB" from meminfo, in bytes.
func memAvailable(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			v, _ := strconv.ParseUint(f[1], 10, 64)
			if len(f) >= 3 && f[2] == "kB" {
				v *= 1024
			}
			return v
		}
	}
	return 0
}
