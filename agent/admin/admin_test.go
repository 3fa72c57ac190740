package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/apitest"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
)

// startAgent serves the API over a fresh state in a temporary root, runs
// ready tasks every few milliseconds, and points the commands at it.
func startAgent(t *testing.T) *state.State {
	t.Helper()
	a := apitest.Start(t)
	a.RunTasks(t)
	testutil.Replace(t, &newClient, func() *client.Client { return client.New(dirs.SocketPath) })
	return a.State
}

// setApps records apps in the state as the app manager does.
func setApps(t *testing.T, st *state.State, apps ...*appmgr.App) {
	t.Helper()
	m := map[string]*appmgr.App{}
	for _, a := range apps {
		m[a.Name] = a
	}
	st.Lock()
	st.Set("apps", m)
	st.Unlock()
}

func hello() *appmgr.App {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	return &appmgr.App{Name: "hello", Current: 2, Sequence: []appmgr.Revision{
		{Revision: 1, Version: "1.0", Type: "app", Arch: "all", Size: 10, SHA256: strings.Repeat("a", 64), Publisher: "acme", Installed: at},
		{Revision: 2, Version: "2.0", Type: "app", Arch: "all", Size: 20, SHA256: "short", Publisher: "acme", Installed: at},
	}}
}

// run runs a command and returns its output.
func run(cmd func([]string, io.Writer, io.Writer) error, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := cmd(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestUsageErrors(t *testing.T) {
	startAgent(t)
	tests := []struct {
		name string
		cmd  func([]string, io.Writer, io.Writer) error
		args []string
		want string
	}{
		{"list", List, []string{"extra"}, "no arguments"},
		{"info", Info, nil, "one app name"},
		{"changes", Changes, []string{"1", "2"}, "at most one"},
		{"install", Install, nil, "one package file"},
		{"refresh", Refresh, []string{"a.pdk", "b.pdk"}, "one package file"},
		{"revert", Revert, nil, "one app name"},
		{"remove", Remove, []string{"a", "b"}, "one app name"},
		{"services", Services, []string{"a", "b"}, "at most one app name"},
		{"start", Start, nil, "one service, APP or APP.SVC"},
		{"stop", Stop, []string{"a", "b"}, "one service"},
		{"restart", Restart, nil, "one service"},
		{"logs", Logs, nil, "one service"},
		{"logs -n", Logs, []string{"-n", "-1", "a"}, "-n takes a number"},
		{"base", Base, nil, "subcommand: update or status"},
		{"base frob", Base, []string{"frob"}, "unknown base subcommand"},
		{"base update", Base, []string{"update"}, "a slot image FILE or its URLs"},
		{"base update urls", Base, []string{"update", "http://x/b.img"}, "needs --assert FILE"},
		{"base status", Base, []string{"status", "x"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(tt.cmd, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a usage error with %q", err, tt.want)
			}
		})
	}
}

func TestListAndInfo(t *testing.T) {
	st := startAgent(t)
	out, _, err := run(List)
	if err != nil || !strings.Contains(out, "No apps are installed") {
		t.Errorf("list without apps: got %q, %v, want the no-apps hint", out, err)
	}
	out, _, err = run(List, "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json without apps: got %q, %v, want []", out, err)
	}

	setApps(t, st, hello())
	out, _, err = run(List)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "hello 2.0 2 acme -" {
		t.Errorf("list: got %q, want a header and hello 2.0 2 acme - (no health)", out)
	}

	out, _, err = run(Info, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version:   2.0", "revision:  2", "  * 2  2.0", "sha256 short", "    1  1.0", "sha256 " + strings.Repeat("a", 16) + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("info: got %q, want it to contain %q", out, want)
		}
	}
	out, _, err = run(Info, "--json", "hello")
	var info apitypes.AppInfo
	if err != nil || json.Unmarshal([]byte(out), &info) != nil || info.Name != "hello" || len(info.Revisions) != 2 {
		t.Errorf("info --json: got %q, %v, want hello with 2 revisions", out, err)
	}

	_, _, err = run(Info, "nope")
	if err == nil || !strings.Contains(err.Error(), "nope is not installed") {
		t.Errorf("info nope: got %v, want nope is not installed", err)
	}
}

func TestChanges(t *testing.T) {
	st := startAgent(t)
	out, _, err := run(Changes)
	if err != nil || strings.TrimSpace(out) != "No changes." {
		t.Errorf("changes without changes: got %q, %v, want No changes.", out, err)
	}
	st.Lock()
	chg := st.NewChange("install", `Install "hello"`)
	task := st.NewTask("never-run", "Wait for nothing")
	task.Logf("a line of log")
	chg.AddTask(task)
	task.SetStatus(state.HoldStatus)
	id := chg.ID()
	st.Unlock()

	out, _, err = run(Changes)
	if err != nil || !strings.Contains(out, id+"   Hold") || !strings.Contains(out, `Install "hello"`) {
		t.Errorf("changes: got %q, %v, want change %s on hold", out, err, id)
	}
	out, _, err = run(Changes, "--in-progress")
	if err != nil || strings.TrimSpace(out) != "No changes." {
		t.Errorf("changes --in-progress: got %q, %v, want No changes.", out, err)
	}
	out, _, err = run(Changes, id)
	if err != nil || !strings.Contains(out, "Hold    Wait for nothing") || !strings.Contains(out, "INFO a line of log") {
		t.Errorf("changes %s: got %q, %v, want the task and its log", id, out, err)
	}
	_, _, err = run(Changes, "99")
	if err == nil || !strings.Contains(err.Error(), `"99"`) {
		t.Errorf("changes 99: got %v, want no change with id 99", err)
	}
}

func TestRevertFollowsChange(t *testing.T) {
	testutil.NeedRoot(t, "revert over the socket")
	st := startAgent(t)
	setApps(t, st, hello())

	out, _, err := run(Revert, "--no-wait", "--json", "hello")
	var got map[string]string
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got["change"] == "" {
		t.Fatalf("revert --no-wait --json: got %q, %v, want the change id", out, err)
	}
	// The revision has no package in the temporary root: linking it
	// fails, and the command waits for that and says so.
	if _, err := newClient().Wait(got["change"], nil); err == nil {
		t.Fatalf("revert of a revision without a package: got success, want an error")
	}
	out, errOut, err := run(Revert, "hello")
	if err == nil || !strings.HasPrefix(err.Error(), "cannot revert hello: ") {
		t.Errorf("revert: got %v, want cannot revert hello", err)
	}
	if out != "" || !strings.Contains(errOut, "error   Make revision 1 of \"hello\" current") {
		t.Errorf("revert: got stdout %q stderr %q, want the failed step on stderr", out, errOut)
	}
}

// TestAppOfChangeFromData pins issue 10's summary parsing: the app a
// change worked on comes from the change's data, not from the quoted name
// in its summary (which an app name with a quote, or a reworded summary,
// would break). With the summary parsed, this printed "decoy is not
// installed".
func TestAppOfChangeFromData(t *testing.T) {
	st := startAgent(t)
	setApps(t, st, hello())
	st.Lock()
	chg := st.NewChange("refresh", `Refresh "decoy" revision 2`)
	manager.Touch(chg, manager.AppKey("hello"))
	task := st.NewTask("done", "Done already")
	chg.AddTask(task)
	task.SetStatus(state.DoneStatus)
	id := chg.ID()
	st.Unlock()

	out, _, err := run(Changes, "--json", id)
	var ci apitypes.ChangeInfo
	if err != nil || json.Unmarshal([]byte(out), &ci) != nil || ci.App != "hello" {
		t.Fatalf("changes --json %s: got %q, %v, want app hello", id, out, err)
	}
	var buf bytes.Buffer
	c := newCommand("refresh", "", io.Discard, true)
	if err := printAppOfChange(c, ci, &buf); err != nil || !strings.HasPrefix(buf.String(), "hello 2.0 (revision 2)") {
		t.Errorf("printAppOfChange: got %q, %v, want hello 2.0 (revision 2) is current", buf.String(), err)
	}
	ci.App = ""
	if err := printAppOfChange(c, ci, &buf); err == nil || !strings.Contains(err.Error(), "names no app") {
		t.Errorf("printAppOfChange of a change of no app: got %v, want names no app", err)
	}
}

// TestDegradedWarning checks that every command warns, once, on stderr
// while the agent says it is degraded (issue 9 item 3: where a user sees
// that the agent cannot save its state), and stops once it is saved.
func TestDegradedWarning(t *testing.T) {
	st := startAgent(t)
	t.Cleanup(st.Close)
	statetest.BreakSaving(t, st)
	for _, args := range [][]string{{}, {"--json"}} {
		out, stderr, err := run(List, args...)
		if err != nil || !strings.Contains(out, "[]") && !strings.Contains(out, "No apps") {
			t.Errorf("list %v while degraded: got %q, %v, want the list", args, out, err)
		}
		if strings.Count(stderr, "warning: the paddock agent is degraded since") != 1 || !strings.Contains(stderr, "cannot save the agent's state") {
			t.Errorf("list %v while degraded: got stderr %q, want one warning with the reason", args, stderr)
		}
	}
	statetest.MendSaving(t, st)
	if _, stderr, _ := run(List); stderr != "" {
		t.Errorf("list once saved: got stderr %q, want nothing", stderr)
	}
}
