package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestUnconnectedPlugs(t *testing.T) {
	for _, tc := range []struct {
		result string
		want   []string
	}{
		{`{"name":"hello","revision":2,"unconnected-plugs":["hello:serial-port"]}`, []string{"hello:serial-port"}},
		{`{"name":"hello","revision":2}`, nil},
		{`"done"`, nil},
		{``, nil},
		{`{"unconnected-plugs":"x"}`, nil},
	} {
		if got := unconnectedPlugs(json.RawMessage(tc.result)); !slices.Equal(got, tc.want) {
			t.Errorf("unconnectedPlugs(%s): got %v, want %v", tc.result, got, tc.want)
		}
	}
}

// TestWriteUnconnected: 'fleet rollout status' names the devices whose
// hardware plugs wait for an operator, a few of them, with what a device
// reported made printable.
func TestWriteUnconnected(t *testing.T) {
	var devs []RolloutDeviceStatus
	devs = append(devs, RolloutDeviceStatus{ID: "ok1", Result: "done"})
	for i := range 7 {
		devs = append(devs, RolloutDeviceStatus{ID: fmt.Sprintf("dev%d", i), Result: "done", Unconnected: []string{"hello:serial-port\x1b[2J"}})
	}
	var b bytes.Buffer
	writeUnconnected(&b, devs)
	out := b.String()
	if strings.Contains(out, "\x1b") || strings.Contains(out, "ok1") {
		t.Errorf("got %q, want printable lines for the devices with unconnected plugs only", out)
	}
	if !strings.Contains(out, "dev0: hardware plugs not connected: hello:serial-port") || !strings.Contains(out, "and 2 more devices") {
		t.Errorf("got\n%s\nwant 5 devices named and 2 more counted", out)
	}
}
