package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
)

// fakeManager records what the daemon asks of it in log.
type fakeManager struct {
	name   string
	log    *[]string
	fail   error
	report any
}

var (
	_ manager.StartUpper = (*fakeManager)(nil)
	_ manager.Stopper    = (*fakeManager)(nil)
	_ manager.Reporter   = (*fakeManager)(nil)
)

func (m *fakeManager) StartUp() error { *m.log = append(*m.log, m.name+".StartUp"); return m.fail }
func (m *fakeManager) Ensure() error  { *m.log = append(*m.log, m.name+".Ensure"); return m.fail }
func (m *fakeManager) Stop()          { *m.log = append(*m.log, m.name+".Stop") }
func (m *fakeManager) Report() any    { return m.report }

// ensureOnly is a manager with nothing but Ensure.
type ensureOnly struct{ log *[]string }

func (m ensureOnly) Ensure() error { *m.log = append(*m.log, "plain.Ensure"); return nil }

func TestManagersLoop(t *testing.T) {
	st, err := state.Open(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	var log []string
	a := &fakeManager{name: "a", log: &log, fail: errors.New("a broke"), report: []string{"x"}}
	b := &fakeManager{name: "b", log: &log, report: 1}
	d := &Daemon{log: quiet(), runner: state.NewRunner(st), managers: []manager.Manager{a, ensureOnly{&log}, b}}

	d.startUp()
	d.ensure()
	d.stopManagers()
	// A manager's error is logged and the others go on; stops go last first.
	want := "a.StartUp b.StartUp a.Ensure plain.Ensure b.Ensure b.Stop a.Stop"
	if got := strings.Join(log, " "); got != want {
		t.Errorf("got calls %q, want %q", got, want)
	}

	steps := []struct {
		change func()
		want   bool
	}{
		{func() {}, true}, // the first report
		{func() {}, false},
		{func() { b.report = 2 }, true},
		{func() { b.report = 2 }, false},
		{func() { a.report = []string{"x", "y"} }, true},
	}
	for i, s := range steps {
		s.change()
		if got := d.reportChanged(); got != s.want {
			t.Errorf("step %d: reportChanged got %v, want %v", i, got, s.want)
		}
	}
}
