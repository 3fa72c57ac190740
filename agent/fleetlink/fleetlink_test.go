package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/fetch"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// fixture is a device in a temporary root that trusts root, and an
// operator key and a publisher key that root delegated.
type fixture struct {
	dev                *Device
	root, ops, pub     *keys.PrivateKey
	opsDeleg, pubDeleg []byte
	runner             *state.Runner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := statetest.Open(t)
	f := &fixture{}
	f.root, f.ops, f.pub = asserttest.Key(t, "root"), asserttest.Key(t, "ops"), asserttest.Key(t, "pub")
	asserttest.Trust(t, f.root)
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	f.opsDeleg = delegate(t, f.root, f.ops, assert.RoleOperator, "*", since)
	f.pubDeleg = delegate(t, f.root, f.pub, assert.RolePublisher, "hello", since)
	runner := state.NewRunner(st)
	apps := appmgr.New(manager.NewEnv(st, runner, slog.New(slog.NewTextHandler(io.Discard, nil))))
	f.dev = New(st, apps, "dev1", []string{"lab"}, nil)
	runTasks(t, runner)
	f.runner = runner
	return f
}

// runTasks runs the ready tasks every few milliseconds, as the agent's
// loop does, until the test ends.
func runTasks(t *testing.T, runner *state.Runner) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			runner.Ensure()
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { runner.Stop(); close(stop); <-done })
}

func delegate(t *testing.T, root, key *keys.PrivateKey, role, names string, since time.Time) []byte {
	t.Helper()
	return asserttest.Delegation(t, root, key, func(ak *assert.AccountKey) {
		ak.Role, ak.Names, ak.Since, ak.Until = role, []string{names}, since, time.Time{}
	})
}

// command signs a command with key and bundles it after delegation.
func command(t *testing.T, key *keys.PrivateKey, delegation []byte, id, target, action string, body string, expiry time.Time) []byte {
	t.Helper()
	return asserttest.Bundle(delegation, asserttest.Command(t, key, func(c *assert.Command) {
		c.ID, c.Target, c.Action, c.Body = id, target, action, []byte(body)
		c.NotBefore, c.Expiry = time.Now().Add(-time.Minute).UTC().Truncate(time.Second), expiry.UTC().Truncate(time.Second)
	}))
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name    string
		bundle  []byte
		wantErr error
		wantID  string
	}{
		{"for this device", command(t, f.ops, f.opsDeleg, "c1", "device/dev1", "remove", `{"name":"hello"}`, hour), nil, "c1"},
		{"for its group", command(t, f.ops, f.opsDeleg, "c2", "group/lab", "ping", "", hour), nil, "c2"},
		{"for another device", command(t, f.ops, f.opsDeleg, "c3", "device/dev2", "ping", "", hour), trust.ErrNotForMe, "c3"},
		{"for another group", command(t, f.ops, f.opsDeleg, "c4", "group/eu", "ping", "", hour), trust.ErrNotForMe, "c4"},
		{"expired", command(t, f.ops, f.opsDeleg, "c5", "device/dev1", "ping", "", time.Now().Add(-time.Second)), trust.ErrExpired, "c5"},
		{"signed by a publisher", command(t, f.pub, f.pubDeleg, "c6", "device/dev1", "ping", "", hour), trust.ErrNotDelegated, "c6"},
		{"garbage", []byte("not an assertion"), assert.ErrUnsigned, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := f.dev.Verify(tt.bundle)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want the command accepted", err)
				}
			} else if !errors.Is(err, tt.wantErr) && !(tt.name == "garbage" && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			gotID := ""
			if cmd != nil {
				gotID = cmd.ID
			}
			if gotID != tt.wantID {
				t.Errorf("command id: got %q, want %q (a refusal names the command)", gotID, tt.wantID)
			}
		})
	}
	cmd, _ := f.dev.Verify(tests[0].bundle)
	if cmd.Args.Name != "hello" || cmd.Operator != "ops" {
		t.Errorf("got args %+v and operator %q, want name hello from ops", cmd.Args, cmd.Operator)
	}
}

func TestApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	noProgress := func(string, int) {}
	if res, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionPing}, noProgress); err != nil || !strings.Contains(string(res), "pong") {
		t.Errorf("ping: got %s, %v", res, err)
	}
	// config-set is a configure change of an app (appmgr's tests run it).
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionConfigSet, Args: mqtt.Args{Key: "tz", Value: "UTC"}}, noProgress); err == nil || !strings.Contains(err.Error(), `config-set needs APP.KEY, not "tz"`) {
		t.Errorf("config-set of no app: got %v, want APP.KEY asked for", err)
	}
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionConfigSet, Args: mqtt.Args{Key: "absent.tz", Value: "UTC"}}, noProgress); !errors.Is(err, appmgr.ErrNotInstalled) {
		t.Errorf("config-set of an absent app: got %v, want ErrNotInstalled", err)
	}
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionRemove, Args: mqtt.Args{Name: "absent"}}, noProgress); !errors.Is(err, appmgr.ErrNotInstalled) {
		t.Errorf("remove of an absent app: got %v, want ErrNotInstalled", err)
	}
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionReboot}, noProgress); err == nil {
		t.Error("reboot in a test root: got nil, want a refusal")
	}
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionStart, Args: mqtt.Args{Name: "hello"}}, noProgress); !errors.Is(err, errUnsupported) {
		t.Errorf("start: got %v, want errUnsupported", err)
	}
	if _, err := f.dev.Apply(ctx, &mqtt.Command{Action: mqtt.ActionInstall, Args: mqtt.Args{URLs: []string{"http://127.0.0.1:1/x.pdk"}}}, noProgress); err == nil {
		t.Error("install without assertions: got nil, want an error")
	}
	st := f.dev.State()
	b, _ := json.Marshal(st)
	if st.Health != "ok" || st.Apps == nil || len(st.Apps) != 0 {
		t.Errorf("state: got %s, want health ok and no apps", b)
	}
}

func TestAppOf(t *testing.T) {
	f := newFixture(t)
	rev := asserttest.Revision(t, f.pub, "hello", func(r *assert.AppRevision) {
		r.Version, r.Revision, r.Arch, r.Size, r.SHA256, r.Timestamp = "1", 1, "all", 1, strings.Repeat("0", 64), time.Now().UTC().Truncate(time.Second)
	})
	tests := []struct {
		cmd  mqtt.Command
		want string
	}{
		{mqtt.Command{Action: mqtt.ActionInstall, Args: mqtt.Args{Assertions: string(asserttest.Bundle(f.pubDeleg, rev))}}, "hello"},
		{mqtt.Command{Action: mqtt.ActionRefresh, Args: mqtt.Args{Assertions: "garbage"}}, ""},
		{mqtt.Command{Action: mqtt.ActionRemove, Args: mqtt.Args{Name: "hello"}}, "hello"},
		{mqtt.Command{Action: mqtt.ActionConnect, Args: mqtt.Args{Name: "hello:serial uart0"}}, "hello"},
		{mqtt.Command{Action: mqtt.ActionReboot, Args: mqtt.Args{Name: "hello"}}, ""},
		{mqtt.Command{Action: mqtt.ActionPing}, ""},
	}
	for _, tt := range tests {
		if got := appOf(&tt.cmd); got != tt.want {
			t.Errorf("appOf(%s %+v) = %q, want %q", tt.cmd.Action, tt.cmd.Args.Name, got, tt.want)
		}
	}
}

func TestDownloadLimits(t *testing.T) {
	d := &Device{Download: fetch.Limits{MinRate: 2048, RateWindow: time.Minute}}
	got, err := d.limits(&mqtt.DownloadLimits{Deadline: "2h", RateWindow: "10s"})
	if want := (fetch.Limits{MinRate: 2048, RateWindow: 10 * time.Second, Deadline: 2 * time.Hour}); err != nil || got != want {
		t.Errorf("got %+v, %v, want %+v", got, err, want)
	}
	if got, _ := d.limits(nil); got != d.Download {
		t.Errorf("without the command's limits: got %+v, want the device's %+v", got, d.Download)
	}
	for _, bad := range []mqtt.DownloadLimits{{Deadline: "soon"}, {RateWindow: "-1s"}, {RateWindow: "0s"}} {
		if _, err := d.limits(&bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("limits %+v: got %v, want a one-line error", bad, err)
		}
	}
}

// Resume finds the change a command started, by the id the link recorded
// or, when the agent stopped before the link recorded it, by the command
// id in the change's data, and answers the change's outcome; a command
// that started no change gets mqtt.ErrNoChange.
func TestResume(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.runner.AddHandler("test-step", func(*state.Task) error { <-release; return nil }, nil)
	f.runner.AddHandler("test-fail", func(*state.Task) error { return errors.New("the disk is on fire") }, nil)
	newChange := func(kind, command, task string) string {
		f.dev.st.Lock()
		defer f.dev.st.Unlock()
		chg := f.dev.st.NewChange(kind, "a change")
		chg.Set("app-name", "hello")
		chg.Set("revision", map[string]any{"revision": 3, "version": "1.3"})
		chg.Set(appmgr.CommandKey, command)
		chg.AddTask(f.dev.st.NewTask(task, "a step"))
		return chg.ID()
	}
	done := newChange("refresh", "c1", "test-step")
	failed := newChange("revert", "c2", "test-fail")
	ctx := context.Background()
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	tests := []struct {
		cmd, change string
		want        string
		wantErr     string
	}{
		{"c1", done, `{"name":"hello","revision":3,"version":"1.3"}`, ""},
		{"c1", "", `{"name":"hello","revision":3,"version":"1.3"}`, ""}, // found by the command
		{"c2", failed, "", "the disk is on fire"},
		{"c3", "", "", mqtt.ErrNoChange.Error()},
		{"c3", "999", "", mqtt.ErrNoChange.Error()},
	}
	for _, tt := range tests {
		res, err := f.dev.Resume(ctx, &mqtt.Command{ID: tt.cmd}, tt.change, func(string, int) {})
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Resume(%s, %q): got %v, want %q", tt.cmd, tt.change, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || string(res) != tt.want):
			t.Errorf("Resume(%s, %q): got %s, %v, want %s", tt.cmd, tt.change, res, err, tt.want)
		}
	}
	if _, err := f.dev.Resume(ctx, &mqtt.Command{ID: "c3"}, "", nil); !errors.Is(err, mqtt.ErrNoChange) {
		t.Errorf("got %v, want mqtt.ErrNoChange", err)
	}
}

// TestRevertedAnswer: a refresh that undid itself, its new revision
// unhealthy, answers its fleet command "reverted: <reason>", and the
// device's health says the change was reverted and why.
func TestRevertedAnswer(t *testing.T) {
	f := newFixture(t)
	const why = "http probe of web failed (3 of 3): connection refused"
	f.dev.st.Lock()
	chg := f.dev.st.NewChange("refresh", `Refresh "web" revision 2`)
	chg.Set("app-name", "web")
	chg.Set(appmgr.CommandKey, "c1")
	for kind, status := range map[string]state.Status{"link-revision": state.UndoneStatus, "gate-check-health": state.ErrorStatus} {
		task := f.dev.st.NewTask(kind, kind)
		chg.AddTask(task)
		task.SetStatus(status)
		if status == state.ErrorStatus {
			task.Errf("health check failed: %s", why)
		}
	}
	chg.Set(appmgr.HealthFailedKey, why)
	f.dev.st.Unlock()

	_, err := f.dev.Resume(context.Background(), &mqtt.Command{ID: "c1"}, chg.ID(), func(string, int) {})
	if want := mqtt.RevertedPrefix + "health check failed: " + why; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	health, problems := f.dev.health(nil)
	want := fmt.Sprintf("change %s (Refresh \"web\" revision 2) reverted: health check failed: %s", chg.ID(), why)
	if health != healthDegraded || len(problems) != 1 || problems[0] != want {
		t.Errorf("got %s %q, want degraded with %q", health, problems, want)
	}
}
