package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
)

func TestSendDevice(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("good", fakeDone, "lab")
	e.fleet.add("bad", fakeFail, "lab")

	var stdout, stderr bytes.Buffer
	args := append(e.opArgs(), "--device", "good", "--json", "restart", "hello")
	if err := Send(args, &stdout, &stderr); err != nil {
		t.Fatalf("send to good: %v (%s)", err, stderr.String())
	}
	var res SendResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 1 || res.Devices[0].Result != mqtt.EventDone || res.Action != "restart" {
		t.Errorf("got %+v, want restart done on good", res)
	}
	if !strings.Contains(stderr.String(), "good: download 50%") {
		t.Errorf("got stderr %q, want the progress", stderr.String())
	}
	if got := e.fleet.received("good"); len(got) != 1 || got[0] != res.Command {
		t.Errorf("got commands %v, want [%s]", got, res.Command)
	}

	stdout.Reset()
	stderr.Reset()
	err := Send(append(e.opArgs(), "--device", "bad", "ping"), &stdout, &stderr)
	var code cli.ExitCode
	if !errors.As(err, &code) || code != 1 {
		t.Fatalf("got %v, want exit code 1", err)
	}
	if !strings.Contains(stdout.String(), "bad: failed: cannot download") || !strings.Contains(stderr.String(), "1 failed") {
		t.Errorf("got stdout %q, stderr %q, want the failure and a summary", stdout.String(), stderr.String())
	}
}

func TestSendGroup(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("a1", fakeDone, "lab")
	e.fleet.add("a2", fakeDone, "lab")
	e.fleet.add("b1", fakeDone, "other")
	dir := t.TempDir()
	t.Chdir(dir)
	// The package's assertions are found next to where the operator runs.
	if err := os.WriteFile(filepath.Join(dir, "hello_1.0.pdk.assert"), appRevision(t), 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	args := append(e.opArgs(), "--group", "lab", "--json", "install", "http://127.0.0.1:1/hello_1.0.pdk")
	if err := Send(args, &stdout, &stderr); err != nil {
		t.Fatalf("send to lab: %v (%s)", err, stderr.String())
	}
	var res SendResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 2 || res.Devices[0].Device != "a1" || res.Devices[1].Device != "a2" || res.Target != "group/lab" {
		t.Errorf("got %+v, want done on a1 and a2", res)
	}
	if got := e.fleet.received("b1"); len(got) != 0 {
		t.Errorf("got commands %v on b1, want none", got)
	}
}

func TestSendUsage(t *testing.T) {
	t.Setenv("PADDOCK_BROKER", "tcp://127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", "k", "--delegation", "d", "ping"}, "--device"},
		{[]string{"--key", "k", "--delegation", "d", "--device", "x", "--group", "g", "ping"}, "--device"},
		{[]string{"--key", "k", "--delegation", "d", "--device", "x", "fly"}, "unknown action"},
		{[]string{"--key", "k", "--delegation", "d", "--device", "x", "remove"}, "remove NAME"},
		{[]string{"--device", "x", "ping"}, "--key"},
	} {
		var out bytes.Buffer
		err := Send(tc.args, &out, &out)
		if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("send %v: got %v, want a usage error about %s", tc.args, err, tc.want)
		}
	}
}

func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		action string
		want   mqtt.Args
	}{
		{[]string{"logs", "hello"}, "logs", mqtt.Args{Name: "hello", Lines: 20}},
		{[]string{"config-set", "k", "v"}, "config-set", mqtt.Args{Key: "k", Value: "v"}},
		{[]string{"connect", "hello:serial", "uart0"}, "connect", mqtt.Args{Name: "hello:serial", Slot: "uart0"}},
		{[]string{"connect", "hello:serial"}, "connect", mqtt.Args{Name: "hello:serial"}},
		{[]string{"disconnect", "hello:serial"}, "disconnect", mqtt.Args{Name: "hello:serial"}},
		{[]string{"reboot"}, "reboot", mqtt.Args{}},
	} {
		action, args, err := parseAction(tc.args, actionOptions{lines: 20})
		if err != nil || action != tc.action || args.Name != tc.want.Name || args.Slot != tc.want.Slot || args.Key != tc.want.Key || args.Value != tc.want.Value || args.Lines != tc.want.Lines {
			t.Errorf("%v: got %s %+v %v, want %s %+v", tc.args, action, args, err, tc.action, tc.want)
		}
	}
}

// TestParseActionBaseUpdate pins a bug: 'fleet send' and 'fleet rollout'
// refused every base-update, since they wanted an app-revision in the
// assertions of any artifact ("it holds no app-revision assertion"), and a
// base comes with a base-revision ('paddock image base --key').
func TestParseActionBaseUpdate(t *testing.T) {
	key := asserttest.Key(t, "root")
	base := testutil.TempFile(t, "base.img.assert", string(asserttest.BaseRevision(t, key, "paddock-base", nil)))
	app := testutil.TempFile(t, "hello.pdk.assert", string(asserttest.Revision(t, key, "hello", nil)))
	action, args, err := parseAction([]string{"base-update", "http://127.0.0.1/base.img"}, actionOptions{assertFile: base})
	if err != nil || action != "base-update" || len(args.URLs) != 1 || !strings.Contains(args.Assertions, "type: base-revision") {
		t.Errorf("base-update with a base-revision: got %s %+v, %v, want the command with its assertions", action, args, err)
	}
	for _, tc := range []struct{ action, url, file, want string }{
		{"base-update", "http://127.0.0.1/base.img", app, "no base-revision assertion"},
		{"install", "http://127.0.0.1/hello.pdk", base, "no app-revision assertion"},
	} {
		if _, _, err := parseAction([]string{tc.action, tc.url}, actionOptions{assertFile: tc.file}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with the other kind of assertion: got %v, want %q", tc.action, err, tc.want)
		}
	}
}

func TestParseActionDownloadLimits(t *testing.T) {
	rev := asserttest.Revision(t, asserttest.Key(t, "root"), "hello", func(r *assert.AppRevision) {
		*r = assert.AppRevision{Name: "hello", Version: "1", Revision: 1, Arch: "all", Size: 1, SHA256: strings.Repeat("0", 64), Type: "app"}
	})
	as := testutil.TempFile(t, "a.assert", string(rev))
	_, args, err := parseAction([]string{"install", "http://127.0.0.1/hello.pdk"}, actionOptions{assertFile: as, minRate: 512, deadline: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := args.Download; d == nil || d.MinRate != 512 || d.Deadline != "2h0m0s" {
		t.Errorf("got download limits %+v, want 512 B/s and 2h", d)
	}
	if _, _, err := parseAction([]string{"ping"}, actionOptions{deadline: time.Hour}); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("ping with --download-deadline: got %v, want a usage error", err)
	}
}
