package boot

import (
	"reflect"
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
