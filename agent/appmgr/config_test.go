package appmgr

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/assert/asserttest"
)

// seeingHooks is a hook runner whose configure hook reads the app's
// configuration as the app would (pending values included), and fails
// when the port is not a number.
type seeingHooks struct {
	m    *Manager
	seen map[string]any
}

func (h *seeingHooks) RunHook(ctx context.Context, app, hook string) (string, error) {
	cfg, err := h.m.Config(app, nil, true)
	if err != nil {
		return "", err
	}
	h.seen = cfg
	if _, ok := cfg["port"].(float64); !ok {
		return "port must be a number\n", errors.New("exit status 1: port must be a number")
	}
	return "", nil
}

// TestConfigure checks that a configuration change keeps the values once
// the configure hook, which sees them, accepts them, and that a refused
// one keeps the old values.
func TestConfigure(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	f, fake := fakeFixture(t)
	hooks := &seeingHooks{m: f.m}
	f.m.Hooks = hooks
	f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, key1)}, OwnerKey: key1.Public().Fingerprint()})
	withHooks(fake.kept["hello/1"])

	id, err := f.m.Configure("hello", map[string]any{"port": ParseConfigValue("8080"), "name": ParseConfigValue("web")})
	if err != nil {
		t.Fatal(err)
	}
	if status := f.settle(id); status != state.DoneStatus {
		t.Fatalf("got %s, want Done", status)
	}
	want := map[string]any{"port": 8080.0, "name": "web"}
	if !reflect.DeepEqual(hooks.seen, want) {
		t.Errorf("the hook saw %v, want %v", hooks.seen, want)
	}
	if got, _ := f.m.Config("hello", nil, false); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// The hook refuses: the old values stay.
	id, err = f.m.Configure("hello", map[string]any{"port": ParseConfigValue("eighty")})
	if err != nil {
		t.Fatal(err)
	}
	if status := f.settle(id); status != state.ErrorStatus {
		t.Fatalf("got %s, want Error", status)
	}
	if hooks.seen["port"] != "eighty" {
		t.Errorf("the hook saw port %v, want the new value eighty", hooks.seen["port"])
	}
	if got, _ := f.m.Config("hello", nil, true); !reflect.DeepEqual(got, want) {
		t.Errorf("after a refused change: got %v, want the old %v", got, want)
	}
	if _, _, err := f.change(id); err == nil || !strings.Contains(err.Error(), "the configure hook of hello failed: exit status 1: port must be a number") {
		t.Errorf("got change error %v, want the hook's", err)
	}
	if got, _ := f.m.Config("hello", []string{"name", "absent"}, false); !reflect.DeepEqual(got, map[string]any{"name": "web"}) {
		t.Errorf("one key: got %v", got)
	}
}

func TestConfigureRefuses(t *testing.T) {
	key1 := asserttest.Key(t, "pub")
	f, fake := fakeFixture(t)
	f.installedOn(fake, &App{Name: "hello", Current: 1, Sequence: []Revision{revisionOf(1, key1)}, OwnerKey: key1.Public().Fingerprint()})
	big := strings.Repeat("x", MaxConfigBytes)
	tests := []struct {
		app    string
		values map[string]any
		want   string
	}{
		{"hello", map[string]any{"Port": 1}, `invalid configuration key "Port"`},
		{"hello", map[string]any{"a.b": 1}, `invalid configuration key "a.b"`},
		{"hello", map[string]any{}, "no values given"},
		{"hello", map[string]any{"big": big}, "more than the 65536 allowed"},
		{"absent", map[string]any{"a": 1}, "not installed"},
		{"../x", map[string]any{"a": 1}, "invalid"},
	}
	for _, tt := range tests {
		if _, err := f.m.Configure(tt.app, tt.values); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: got %v, want %q", tt.app, tt.values, err, tt.want)
		}
	}
	// A second change of the app while one is in progress is refused.
	if _, err := f.m.Configure("hello", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Configure("hello", map[string]any{"b": 1}); !errors.Is(err, ErrInProgress) {
		t.Errorf("a second change: got %v, want ErrInProgress", err)
	}
}
