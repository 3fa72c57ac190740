package state

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    string // sorted KIND:WHEN, space-separated
		wantErr string
	}{
		{spec: "", want: ""},
		{spec: "mount:before", want: "mount:before"},
		{spec: " mount:after , switch:undo-before,,fetch:undo-after ", want: "fetch:undo-after mount:after switch:undo-before"},
		{spec: "ns:kind:before", want: "ns:kind:before"},
		{spec: "mount", wantErr: `"mount" is not KIND:WHEN`},
		{spec: ":before", wantErr: `":before" is not KIND:WHEN`},
		{spec: "mount:during", wantErr: "WHEN one of before, after, undo-before, undo-after"},
	}
	for _, tt := range tests {
		faults, err := parseFaults(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: got error %v, want it to contain %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if got := strings.Join(slices.Sorted(maps.Keys(faults)), " "); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.spec, got, tt.want)
		}
	}
}

// A typo in the fault spec must not let a crash test pass without crashing.
func TestEnsureRefusesBadFaultSpec(t *testing.T) {
	t.Setenv(FaultEnv, "mount:beforre")
	st, _ := openTemp(t)
	addChain(st, []string{"mount"})
	r := NewRunner(st)
	addRecorders(r, st, []string{"mount"}, "", "")
	if err := r.Ensure(); err == nil || !strings.Contains(err.Error(), FaultEnv) {
		t.Errorf("got error %v, want one naming %s", err, FaultEnv)
	}
	if got := calls(t, st); got != "" {
		t.Errorf("got calls %q, want none", got)
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, seed := range []string{"", "mount:before", "a:after,b:undo-before", "x:y:undo-after", ":", ",,"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		faults, err := parseFaults(spec)
		if err != nil {
			return
		}
		for f := range faults {
			kind, when, _ := cutLast(f, ":")
			if kind == "" || !validFaultPoint(when) {
				t.Errorf("%q: got fault %q", spec, f)
			}
		}
	})
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// FuzzDecodeState checks that any state file is either refused or loaded
// into a state that encodes and loads again.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"last-change-id":0,"last-task-id":0}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		st := &State{changes: map[string]*Change{}, tasks: map[string]*Task{}}
		if err := st.decode(raw); err != nil {
			return
		}
		st.Lock()
		for _, c := range st.Changes() {
			c.Status() // must not panic
		}
		out, err := st.encode()
		st.Unlock()
		if err != nil {
			t.Fatalf("cannot encode a decoded state: %v", err)
		}
		back := &State{changes: map[string]*Change{}, tasks: map[string]*Task{}}
		if err := back.decode(out); err != nil {
			t.Fatalf("cannot decode an encoded state: %v\n%s", err, out)
		}
	})
}
