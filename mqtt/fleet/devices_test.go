package fleet

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDevices(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("dev1", fakeDone, "lab")
	e.fleet.add("dev2", fakeDone, "lab", "eu")
	e.fleet.add("dev3", fakeDone, "eu")

	var stdout, stderr bytes.Buffer
	if err := Devices([]string{"--broker", e.broker.URL(), "--group", "lab", "--json"}, &stdout, &stderr); err != nil {
		t.Fatalf("devices: %v (%s)", err, stderr.String())
	}
	var list []DeviceInfo
	if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "dev1" || list[1].ID != "dev2" {
		t.Fatalf("got %+v, want dev1 and dev2", list)
	}
	d := list[0]
	if !d.Online || d.Health != "ok" || d.BaseSlot != "a" || len(d.Apps) != 1 || d.Apps[0].Name != "hello" || d.LastSeen.IsZero() {
		t.Errorf("got %+v, want dev1 online, healthy, on slot a, with hello", d)
	}

	stdout.Reset()
	if err := Devices([]string{"--broker", e.broker.URL()}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[3], "dev3") {
		t.Fatalf("got table\n%s\nwant a header and 3 devices", stdout.String())
	}
	for _, want := range []string{"yes", "a", "hello=1", "ok"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("got row %q, want %q in it", lines[1], want)
		}
	}
}

func TestDevicesUsage(t *testing.T) {
	t.Setenv("PADDOCK_BROKER", "")
	var out bytes.Buffer
	if err := Devices(nil, &out, &out); err == nil || !strings.Contains(err.Error(), "--broker") {
		t.Errorf("got %v, want a usage error about --broker", err)
	}
}

// The refusals a device dropped while its broker was out of reach reach
// the operator: counted in 'fleet devices', and as a warning in 'fleet
// send' when the device awaited reports them.
func TestDroppedRefusalsShown(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("dev1", fakeFlooded, "lab")
	var stdout, stderr bytes.Buffer
	if err := Devices([]string{"--broker", e.broker.URL()}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "ok (4001 refusals dropped)") {
		t.Errorf("got table\n%s\nwant the health to say 4001 refusals dropped", stdout.String())
	}
	stdout.Reset()
	if err := Devices([]string{"--broker", e.broker.URL(), "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"refusals-dropped": 4001`) {
		t.Errorf("got %s, want refusals-dropped 4001", stdout.String())
	}
	stdout.Reset()
	if err := Send(append(e.opArgs(), "--device", "dev1", "ping"), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "warning: dev1: 4001 refusals dropped since 2030-01-01T00:00:00Z; its answer to this command may be among them"; !strings.Contains(stderr.String(), want) {
		t.Errorf("got stderr %q, want %q", stderr.String(), want)
	}
}
