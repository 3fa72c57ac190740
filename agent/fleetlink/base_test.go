package fleetlink

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/mqtt"
)

// TestBaseUpdateAnswer: the answer to a base-update command, after the
// reboot (Resume), is the base the device committed, or the reason it
// rolled back.
func TestBaseUpdateAnswer(t *testing.T) {
	f := newFixture(t)
	f.runner.AddHandler("test-commit", func(*state.Task) error { return nil }, nil)
	f.runner.AddHandler("test-roll-back", func(*state.Task) error {
		return errors.New("rolled back: unhealthy for 2m0s after the boot: web is error: probe failed")
	}, nil)
	newChange := func(command, task string) string {
		f.dev.st.Lock()
		defer f.dev.st.Unlock()
		chg := f.dev.st.NewChange(basemgr.ChangeKind, "Update the base")
		chg.Set("base-update", map[string]any{"slot": "b", "name": "paddock-base", "version": "2", "revision": 2})
		chg.Set(basemgr.CommandKey, command)
		chg.AddTask(f.dev.st.NewTask(task, "a step"))
		return chg.ID()
	}
	committed := newChange("c1", "test-commit")
	rolledBack := newChange("c2", "test-roll-back")
	ctx := context.Background()
	res, err := f.dev.Resume(ctx, &mqtt.Command{ID: "c1"}, committed, func(string, int) {})
	if want := `{"base":"paddock-base","committed":true,"revision":2,"slot":"b","version":"2"}`; err != nil || string(res) != want {
		t.Errorf("committed: got %s, %v, want %s", res, err, want)
	}
	_, err = f.dev.Resume(ctx, &mqtt.Command{ID: "c2"}, rolledBack, func(string, int) {})
	if err == nil || !strings.Contains(err.Error(), "rolled back: unhealthy") {
		t.Errorf("rolled back: got %v, want the reason", err)
	}
	// Without a base manager, a base-update is refused with a reason.
	if _, err := f.dev.Apply(ctx, &mqtt.Command{ID: "c3", Action: mqtt.ActionBaseUpdate}, func(string, int) {}); err == nil || !strings.Contains(err.Error(), "no A/B base") {
		t.Errorf("no base manager: got %v, want a refusal", err)
	}
}

// statusBase is a Base whose status is fixed.
type statusBase struct{ st *apitypes.BaseStatus }

func (b statusBase) Update(basemgr.UpdateOptions) (string, error) {
	return "", errors.New("no updates")
}
func (b statusBase) Status() (*apitypes.BaseStatus, error) { return b.st, nil }

// TestBaseStateCarriesTheLastTry: the state the device reports to the
// fleet says which slot's try failed, why, and what to do.
func TestBaseStateCarriesTheLastTry(t *testing.T) {
	reason := "unhealthy for 10s after the boot: the fleet link is not connected"
	d := &Device{Base: statusBase{&apitypes.BaseStatus{Running: "a", Verified: true,
		Slots: []apitypes.BaseSlot{{Name: "a", State: "good", Running: true, Revision: 1, Version: "1"}, {Name: "b", State: "bad", Why: reason}},
		Last:  apitypes.BaseAttempt{Slot: "b", Result: "failed", Reason: reason, Boots: 1, Advice: "fix it"}}}}
	got := d.baseState()
	want := &mqtt.BaseState{Running: "a", Revision: 1, Version: "1", Verified: true, Slots: map[string]string{"a": "good", "b": "bad: " + reason},
		LastSlot: "b", LastResult: "failed", LastReason: reason, LastAdvice: "fix it"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
