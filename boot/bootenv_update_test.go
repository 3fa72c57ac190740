package boot

import (
	"errors"
	"strings"
	"testing"
)

func TestUpdates(t *testing.T) {
	tryingB := Attempt{Slot: "b", Result: ResultTrying}
	tests := []struct {
		name    string
		env     Env
		change  func(p string) error
		want    Env
		wantErr string
	}{
		{"mark writing", Env{Slot: "a"}, func(p string) error { return MarkWriting(p, "b") },
			Env{Slot: "a", Bad: "b", BadWhy: WhyWriting}, ""},
		{"mark writing clears a try", Env{Slot: "a", Try: "b", Attempts: 2}, func(p string) error { return MarkWriting(p, "b") },
			Env{Slot: "a", Attempts: 2, Bad: "b", BadWhy: WhyWriting}, ""},
		{"writing the known-good slot", Env{Slot: "a"}, func(p string) error { return MarkWriting(p, "a") },
			Env{}, "known-good slot"},
		{"writing during a try", Env{Slot: "a", Trying: "b", BootCount: 1}, func(p string) error { return MarkWriting(p, "b") },
			Env{}, "has not committed"},
		{"writing slot c", Env{Slot: "a"}, func(p string) error { return MarkWriting(p, "c") }, Env{}, "want a or b"},
		{"set try", Env{Slot: "a", Bad: "b", BadWhy: WhyWriting}, func(p string) error { return SetTry(p, "b", 3) },
			Env{Slot: "a", Try: "b", Attempts: 3, Last: tryingB}, ""},
		{"try the known-good slot", Env{Slot: "a"}, func(p string) error { return SetTry(p, "a", 1) }, Env{}, "known-good slot"},
		{"try during a try", Env{Slot: "a", Trying: "b", BootCount: 1}, func(p string) error { return SetTry(p, "b", 1) },
			Env{}, "has not committed"},
		{"zero attempts", Env{Slot: "a"}, func(p string) error { return SetTry(p, "b", 0) }, Env{}, "want 1 to 100"},
		{"commit", Env{Slot: "a", Trying: "b", BootCount: 2, Attempts: 3, Last: Attempt{Slot: "b", Result: ResultTrying, Boots: 2}},
			func(p string) error { return Commit(p, "b") },
			Env{Slot: "b", Last: Attempt{Slot: "b", Result: ResultCommitted, Boots: 2}}, ""},
		{"commit again", Env{Slot: "b", Last: Attempt{Slot: "b", Result: ResultCommitted, Boots: 2}},
			func(p string) error { return Commit(p, "b") },
			Env{Slot: "b", Last: Attempt{Slot: "b", Result: ResultCommitted, Boots: 2}}, ""},
		{"commit a slot not tried", Env{Slot: "a", Try: "b"}, func(p string) error { return Commit(p, "b") }, Env{}, "not being tried"},
		{"mark the tried slot bad", Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 3, Last: Attempt{Slot: "b", Result: ResultTrying, Boots: 1}},
			func(p string) error { return MarkBad(p, "b", "agent unhealthy:\nmqtt down") },
			Env{Slot: "a", Bad: "b", BadWhy: "agent unhealthy: mqtt down", Last: Attempt{Slot: "b", Result: ResultFailed, Reason: "agent unhealthy: mqtt down", Boots: 1}}, ""},
		{"mark the known-good slot bad", Env{Slot: "a", Trying: "b"}, func(p string) error { return MarkBad(p, "a", "x") }, Env{}, "known-good slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newEnvFile(t, envSize)
			if err := Write(p, &tt.env); err != nil {
				t.Fatal(err)
			}
			err := tt.change(p)
			got, rerr := Read(p)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one saying %q", err, tt.wantErr)
				}
				if *got != tt.env {
					t.Errorf("a refused change wrote %+v, want %+v left alone", *got, tt.env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
	p := newEnvFile(t, envSize)
	Write(p, &Env{Slot: "a", Trying: "b"})
	if err := SetTry(p, "b", 1); !errors.Is(err, ErrTryInProgress) {
		t.Errorf("got %v, want ErrTryInProgress", err)
	}
}

// TestUpdateCyclePowerCuts runs a whole base update through the boot
// environment (mark the slot written, try it, boot it, commit it) and
// cuts the power in each write, leaving that write's copy torn: every
// time, the environment read back is the one before the write, and the
// slot it boots is a good one (never the slot being written).
func TestUpdateCyclePowerCuts(t *testing.T) {
	bootOnce := func(p string) error {
		e, err := Read(p)
		if err != nil {
			return err
		}
		_, next := Choose(e, "")
		return Write(p, next)
	}
	steps := []struct {
		name string
		do   func(p string) error
	}{
		{"mark writing", func(p string) error { return MarkWriting(p, "b") }},
		{"set try", func(p string) error { return SetTry(p, "b", 2) }},
		{"first tried boot", bootOnce},
		{"second tried boot", bootOnce},
		{"commit", func(p string) error { return Commit(p, "b") }},
	}
	for cut := range steps {
		t.Run(steps[cut].name, func(t *testing.T) {
			p := newEnvFile(t, envSize)
			if err := Write(p, &Env{Slot: "a"}); err != nil {
				t.Fatal(err)
			}
			var before *Env
			for i := 0; i <= cut; i++ {
				before, _ = Read(p)
				if err := steps[i].do(p); err != nil {
					t.Fatalf("%s: %v", steps[i].name, err)
				}
			}
			copies, _ := readCopies(p)
			newer, _ := newest(copies)
			corrupt(t, p, newer, 30) // the write just made, torn
			got, rep := Load(p)
			if rep == nil || *got != *before {
				t.Fatalf("after the cut: got %+v (repair %v), want the environment before the write %+v", *got, rep, *before)
			}
			slot, _ := Choose(got, "")
			if slot != "a" && slot != got.Trying && slot != got.Try {
				t.Errorf("after the cut the device boots slot %s of %+v", slot, *got)
			}
			if slot == got.Bad {
				t.Errorf("after the cut the device boots slot %s, which is being written or bad", slot)
			}
		})
	}
}
