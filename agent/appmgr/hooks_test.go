package appmgr

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/manifest"
)

// fakeHooks records the hooks run and fails the one named in fail, with
// some output.
type fakeHooks struct {
	ran  []string
	fail string
}

func (h *fakeHooks) RunHook(ctx context.Context, app, hook string) (string, error) {
	h.ran = append(h.ran, app+" "+hook)
	if hook == h.fail {
		return "checking the database\nthe database is locked\n", errors.New("exit status 3: the database is locked")
	}
	return "fine\n", nil
}

// withHooks makes the manifest declare every hook.
func withHooks(mf *manifest.Manifest) {
	mf.Hooks = map[string]*manifest.Hook{}
	for _, h := range manifest.HookNames {
		mf.Hooks[h] = &manifest.Hook{Command: "hooks/" + h}
	}
}

// TestHookFailures checks what a failing hook does to its change: a
// failing pre-refresh hook refuses the refresh and changes nothing, a
// failing install or post-refresh hook undoes the change, and a failing
// remove hook does not stop the remove. The hook's output is in the
// change's log either way.
func TestHookFailures(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	one, two := revisionOf(1, key1), revisionOf(2, key1)
	installedOne := func() *App {
		return &App{Name: "hello", Current: 1, Sequence: []Revision{one}, OwnerKey: key1.Public().Fingerprint()}
	}
	tests := []struct {
		name, fail string
		before     *App
		start      func(f *fixture) string
		want       state.Status
		ran        []string
	}{
		{"pre-refresh refuses", "pre-refresh", installedOne(), func(f *fixture) string { return f.startInstall(f.app("hello"), two) },
			state.ErrorStatus, []string{"hello pre-refresh"}},
		{"post-refresh undoes", "post-refresh", installedOne(), func(f *fixture) string { return f.startInstall(f.app("hello"), two) },
			state.ErrorStatus, []string{"hello pre-refresh", "hello post-refresh"}},
		{"install undoes", "install", nil, func(f *fixture) string { return f.startInstall(nil, two) },
			state.ErrorStatus, []string{"hello install"}},
		{"refresh passes", "", installedOne(), func(f *fixture) string { return f.startInstall(f.app("hello"), two) },
			state.DoneStatus, []string{"hello pre-refresh", "hello post-refresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fake := fakeFixture(t)
			hooks := &fakeHooks{fail: tt.fail}
			f.m.Hooks = hooks
			if tt.before != nil {
				f.installedOn(fake, tt.before)
				withHooks(fake.kept["hello/1"])
			}
			want := fake.world()
			id := tt.start(f)
			withHooks(fake.contents["hello/2"])
			if status := f.settle(id); status != tt.want {
				t.Fatalf("got %s, want %s", status, tt.want)
			}
			if !slices.Equal(hooks.ran, tt.ran) {
				t.Errorf("got hooks %q, want %q", hooks.ran, tt.ran)
			}
			if tt.want == state.DoneStatus {
				return
			}
			if got := fake.world(); got != want {
				t.Errorf("got the fake at\n%s\nwant it back at\n%s", got, want)
			}
			if got := f.app("hello"); (got == nil) != (tt.before == nil) || got != nil && got.Current != tt.before.Current {
				t.Errorf("got app %+v, want %+v", got, tt.before)
			}
			_, _, err := f.change(id)
			if err == nil || !strings.Contains(err.Error(), "the "+tt.fail+" hook of hello failed: exit status 3: the database is locked") {
				t.Errorf("got change error %v, want the hook's failure", err)
			}
			if log := changeLog(f, id); !strings.Contains(log, tt.fail+": checking the database") {
				t.Errorf("the change's log lacks the hook's output:\n%s", log)
			}
			if tt.fail == "pre-refresh" && slices.ContainsFunc(fake.calls, func(c string) bool {
				return strings.HasPrefix(c, "SetCurrent") || strings.HasPrefix(c, "StopSandboxes hello 1") || strings.HasPrefix(c, "StopSandboxes hello 0")
			}) {
				t.Errorf("a refused refresh touched the running app: %q", fake.calls)
			}
		})
	}
}

// TestRemoveHookFailureGoesOn checks that a failing remove hook is logged
// and the app is removed anyway.
func TestRemoveHookFailureGoesOn(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	f, fake := fakeFixture(t)
	hooks := &fakeHooks{fail: "remove"}
	f.m.Hooks = hooks
	f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, key1)}, OwnerKey: key1.Public().Fingerprint()})
	withHooks(fake.kept["hello/1"])
	id, err := f.m.Remove("hello")
	if err != nil {
		t.Fatal(err)
	}
	if status := f.settle(id); status != state.DoneStatus {
		t.Fatalf("got %s, want Done", status)
	}
	if f.app("hello") != nil {
		t.Errorf("hello is still installed")
	}
	if log := changeLog(f, id); !strings.Contains(log, "the remove hook failed, and remove goes on") {
		t.Errorf("the change's log lacks the hook's failure:\n%s", log)
	}
}

// TestUndeclaredHooksDoNothing checks that a revision without hooks runs none.
func TestUndeclaredHooksDoNothing(t *testing.T) {
	f, _ := fakeFixture(t)
	hooks := &fakeHooks{}
	f.m.Hooks = hooks
	if status := f.settle(f.startInstall(nil, revisionOf(2, asserttest.Key(t, "pub")))); status != state.DoneStatus {
		t.Fatalf("got %s, want Done", status)
	}
	if len(hooks.ran) != 0 {
		t.Errorf("got hooks %q, want none", hooks.ran)
	}
}

// changeLog returns every log line of the change's tasks.
func changeLog(f *fixture, id string) string {
	f.st.Lock()
	defer f.st.Unlock()
	var out []string
	for _, t := range f.st.Change(id).Tasks() {
		out = append(out, t.Log()...)
	}
	return strings.Join(out, "\n")
}
