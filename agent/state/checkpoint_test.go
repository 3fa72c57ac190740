package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// openIn opens a state in the new directory dir/lib and returns it with its
// path; its retries are fast and end with the test.
func openIn(t *testing.T, dir string) (*State, string) {
	t.Helper()
	testutil.Replace(t, &retryMin, 5*time.Millisecond)
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(lib, "state.json")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st, path
}

// waitHealthy waits until the state is neither unsaved nor without reserve.
func waitHealthy(t *testing.T, st *State) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if reason, _ := st.Degraded(); reason == "" {
			return
		}
	}
	reason, _ := st.Degraded()
	t.Fatalf("state still degraded after 10s: %s", reason)
}

// getString returns the value of key k.
func getString(t *testing.T, st *State, k string) string {
	t.Helper()
	st.Lock()
	defer st.Unlock()
	var v string
	if err := st.Get(k, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCheckpointFailureKeepsStateAndRetries pins issue 9 items 3 and 4: a
// checkpoint that could not be written (no file descriptors left, a full
// disk; here the state's folder is gone) panicked the agent, and a restart
// came back to the same disk. Now the state stays in memory, says it is
// degraded, and is saved by a retry once the disk takes it.
func TestCheckpointFailureKeepsStateAndRetries(t *testing.T) {
	st, path := openIn(t, t.TempDir())
	recovered := make(chan struct{}, 1)
	st.OnRecovered(func() {
		select {
		case recovered <- struct{}{}:
		default:
		}
	})
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	st.Lock()
	st.Set("k", "v1")
	st.Unlock() // panicked before

	reason, since := st.Degraded()
	if !strings.Contains(reason, "cannot save the agent's state") || !strings.Contains(reason, path) {
		t.Errorf("got degraded reason %q, want one saying the state at %s cannot be saved", reason, path)
	}
	if since.IsZero() {
		t.Errorf("got a zero degraded time, want when it began")
	}
	if got := getString(t, st, "k"); got != "v1" {
		t.Errorf("got k=%q in memory, want v1", got)
	}

	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	select {
	case <-recovered:
	case <-time.After(10 * time.Second):
		t.Fatal("the state was not saved again within 10s of its folder coming back")
	}
	waitHealthy(t, st)
	if got := getString(t, reopen(t, path), "k"); got != "v1" {
		t.Errorf("got k=%q on disk after the retry, want v1", got)
	}
}

// TestEnsureWaitsForUnsavedState pins the other half of that bug: once the
// state cannot be saved, no handler may act before the disk knows its task
// runs, and the task runs once it does, without being counted as a restart.
func TestEnsureWaitsForUnsavedState(t *testing.T) {
	st, path := openIn(t, t.TempDir())
	r := NewRunner(st)
	ran := 0
	r.AddHandler("step", func(*Task) error { ran++; return nil }, nil)
	st.Lock()
	chg := st.NewChange("c", "C")
	task := st.NewTask("step", "Step")
	chg.AddTask(task)
	st.Unlock()

	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := r.Ensure(); err != nil {
		t.Fatal(err)
	}
	if ran != 0 {
		t.Fatalf("got the handler run %d times while its Doing checkpoint failed, want 0", ran)
	}
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, st)
	if err := r.Ensure(); err != nil {
		t.Fatal(err)
	}
	if ran != 1 {
		t.Errorf("got the handler run %d times once the state was saved, want 1", ran)
	}
	st.Lock()
	status, log := task.Status(), strings.Join(task.Log(), "\n")
	st.Unlock()
	if status != DoneStatus {
		t.Errorf("got task status %s, want Done", status)
	}
	if strings.Contains(log, "after a restart") {
		t.Errorf("got task log %q, want no restart: the handler never ran before", log)
	}
	st2 := reopen(t, path)
	st2.Lock()
	defer st2.Unlock()
	if got := st2.Task(task.ID()).Status(); got != DoneStatus {
		t.Errorf("got task status %s on disk, want Done", got)
	}
}
