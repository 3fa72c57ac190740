package boot

import (
	"reflect"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name    string
		running string
		env     Env
		want    []SlotStatus
	}{
		{"one slot", "a", Env{Slot: "a"}, []SlotStatus{{Name: "a", State: StateGood, Running: true}, {Name: "b", State: StateOther}}},
		{"writing b", "a", Env{Slot: "a", Bad: "b", BadWhy: WhyWriting},
			[]SlotStatus{{Name: "a", State: StateGood, Running: true}, {Name: "b", State: StateWriting}}},
		{"try b", "a", Env{Slot: "a", Try: "b"}, []SlotStatus{{Name: "a", State: StateGood, Running: true}, {Name: "b", State: StateTry}}},
		{"trying b", "b", Env{Slot: "a", Trying: "b"}, []SlotStatus{{Name: "a", State: StateGood}, {Name: "b", State: StateTrying, Running: true}}},
		{"b failed", "a", Env{Slot: "a", Bad: "b", BadWhy: "unhealthy"},
			[]SlotStatus{{Name: "a", State: StateGood, Running: true}, {Name: "b", State: StateBad, Why: "unhealthy"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := statusOf(&BootRecord{Slot: tt.running}, &tt.env)
			if !reflect.DeepEqual(got.Slots, tt.want) {
				t.Errorf("got %+v, want %+v", got.Slots, tt.want)
			}
		})
	}
}

// TestReadStatus reads the record init writes and the environment it names.
func TestReadStatus(t *testing.T) {
	root := dirstest.SetRoot(t)
	if _, err := ReadStatus(); err == nil {
		t.Fatal("no boot record: got no error")
	}
	env := newEnvFile(t, envSize)
	Write(env, &Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 2})
	rec := &BootRecord{Slot: "b", Tried: true, Verified: true, RootHash: "ab12", Bootenv: env}
	if err := writeRunRecord(root, rec); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.Boot, rec) || st.Env.Trying != "b" || st.Slots[1].State != StateTrying || !st.Slots[1].Running {
		t.Errorf("got %+v %+v %+v, want the record and slot b trying", *st.Boot, *st.Env, st.Slots)
	}
}

// TestAttemptAdvice gives each story of a failed try its advice, from the
// reasons the boot side and the agent write.
func TestAttemptAdvice(t *testing.T) {
	chosen := func(note string) Attempt {
		e := Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 1, Last: Attempt{Slot: "b", Result: ResultTrying, Reason: note, Boots: 1}}
		_, next := Choose(&e, "")
		return next.Last
	}
	failed := func(why string) Attempt {
		e := Env{Slot: "a", Trying: "b", BootCount: 1}
		e.fail("b", why)
		return e.Last
	}
	tests := []struct {
		name string
		a    Attempt
		want string
	}{
		{"committed", Attempt{Slot: "b", Result: ResultCommitted, Boots: 1}, ""},
		{"trying", Attempt{Slot: "b", Result: ResultTrying, Boots: 1}, "being tried"},
		{"verity", failed("refused at boot: verity: the base does not match its signed root hash"), "did not match its signed base"},
		{"init panicked or hung", chosen(""), "panicked, or it hung and the watchdog reset it"},
		{"agent not ready", chosen("its agent was not ready within 3m0s"), "never got ready"},
		{"agent hung", chosen("its agent was ready, but it did not commit"), "hung or the device reset"},
		{"unhealthy", failed("unhealthy for 10s after the boot: the fleet link is not connected"), "health-window"},
		{"other", failed("marked bad"), "see the reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.Advice()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("attempt %+v: got the advice %q, want %q in it", tt.a, got, tt.want)
			}
		})
	}
}
