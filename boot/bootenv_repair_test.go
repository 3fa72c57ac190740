package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Regression: with both copies of the boot environment damaged, init
// printed "boot failed: bootenv /dev/vda2: no valid copy" and powered off
// at every boot (a bricked device); with one damaged copy it booted from
// the other and never repaired it. Load must give an environment to boot
// by in every case and leave two valid copies behind.
func TestLoadRepairs(t *testing.T) {
	first, second := Env{Slot: "a", Try: "b"}, Env{Slot: "a", Trying: "b", BootCount: 1}
	tests := []struct {
		name        string
		writes      []Env
		damage      []int // copies to corrupt, 0 or 1
		want        Env
		wantDamaged []int // as reported, 1-based; nil: no repair
		wantReset   bool
		wantSays    string
	}{
		{"both good", []Env{first, second}, nil, second, nil, false, ""},
		{"blank", nil, nil, Env{Slot: "a"}, nil, false, ""},
		{"one written, one blank", []Env{first}, nil, first, nil, false, ""},
		{"newer copy damaged", []Env{first, second}, []int{1}, first, []int{2}, false, "copy 2 damaged (bad checksum"},
		{"older copy damaged", []Env{first, second}, []int{0}, second, []int{1}, false, "repaired from copy 2"},
		{"first write torn", []Env{first}, []int{0}, Env{Slot: "a"}, []int{1}, false, "repaired from copy 2"},
		{"both damaged", []Env{first, second}, []int{0, 1}, Env{Slot: "a"}, []int{1, 2}, true, "no valid copy, booting the default slot a, both copies rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newEnvFile(t, 1<<20)
			for _, e := range tt.writes {
				if err := Write(p, &e); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range tt.damage {
				corrupt(t, p, i, 20)
			}
			before := readAll(t, p)
			got, rep := Load(p)
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
			if tt.wantDamaged == nil {
				if rep != nil {
					t.Errorf("got repair %q, want none", rep)
				}
				if !bytes.Equal(readAll(t, p), before) {
					t.Error("Load wrote to a good environment")
				}
				return
			}
			if rep == nil {
				t.Fatal("got no repair, want one")
			}
			if !slices.Equal(rep.Damaged, tt.wantDamaged) || rep.Reset != tt.wantReset || rep.Err != nil {
				t.Errorf("got damaged %v reset %v err %v, want %v %v <nil>", rep.Damaged, rep.Reset, rep.Err, tt.wantDamaged, tt.wantReset)
			}
			if s := rep.String(); !strings.Contains(s, tt.wantSays) || strings.Contains(s, "\n") {
				t.Errorf("got %q, want one line with %q", s, tt.wantSays)
			}
			// Both copies are valid (or blank) now, and hold what Load returned.
			copies, err := readCopies(p)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range copies {
				if c.err != nil || *c.env != tt.want { // a blank copy (never written) reads as the default
					t.Errorf("copy %d after the repair: %+v, err %v, want %+v", i+1, c.env, c.err, tt.want)
				}
			}
			if again, rep := Load(p); rep != nil || *again != tt.want {
				t.Errorf("second Load: got %+v, repair %v, want %+v and no repair", *again, rep, tt.want)
			}
		})
	}
}

// An environment that cannot be read at all still gives the default slot,
// with the reason and why it could not be rewritten.
func TestLoadUnreadable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope")
	got, rep := Load(p)
	if *got != (Env{Slot: "a"}) {
		t.Errorf("got %+v, want the default", *got)
	}
	if rep == nil || !rep.Reset || rep.Err == nil {
		t.Fatalf("got repair %+v, want a reset that could not be written", rep)
	}
	if s := rep.String(); !strings.Contains(s, "copies 1 and 2 damaged (cannot read bootenv") || !strings.Contains(s, "cannot repair it") {
		t.Errorf("got %q, want it to say what was wrong and that the repair failed", s)
	}
}

// The errors of a damaged record go to the console and to the agent's
// record: they name lines, never the record's text.
func TestParseErrorsDoNotEcho(t *testing.T) {
	for _, text := range []string{
		"paddock-bootenv-1\nsecret\n",
		"paddock-bootenv-1\nsecret=1\nsecret=2\n",
		"paddock-bootenv-1\nslot=secret\n",
		"paddock-bootenv-1\nboot_count=secret\n",
	} {
		_, err := parseText(text)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: got %v, want an error without the text", text, err)
		}
	}
}

// chooseSlot is what init runs: a damaged environment gives a slot and a
// problem to record, never an error that stops the boot.
func TestChooseSlotBadEnv(t *testing.T) {
	p := newEnvFile(t, envSize)
	Write(p, &Env{Slot: "b"})
	Write(p, &Env{Slot: "b", Try: "a"})
	corrupt(t, p, 0, 20)
	corrupt(t, p, 1, 20)
	var out syncBuffer
	c := chooseSlot(newConsole(&out), p, "")
	slot, problems := c.slot, c.problems
	if slot != "a" {
		t.Errorf("got slot %s, want the default a", slot)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "bootenv: copy 1 damaged") {
		t.Errorf("got problems %q, want the repair", problems)
	}
	if !strings.Contains(out.String(), "no valid copy, booting the default slot a") {
		t.Errorf("the console lacks the repair:\n%s", out.String())
	}
	if e, err := Read(p); err != nil || *e != (Env{Slot: "a"}) {
		t.Errorf("after the boot: got %+v, %v, want a valid default environment", e, err)
	}
}

func TestRecordProblems(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ProblemsName)
	if got, err := Problems(dir); err != nil || got != nil {
		t.Fatalf("no record: got %q, %v, want nothing", got, err)
	}
	now := mustTime(t, "2026-12-01T22:50:00Z")
	if err := recordProblems(p, nil, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("nothing to record wrote a record: %v", err)
	}
	for i := range maxProblems + 3 {
		if err := recordProblems(p, []string{"bootenv: problem " + string(rune('A'+i)) + "\nsecond line"}, now); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Problems(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxProblems {
		t.Fatalf("got %d lines, want the last %d", len(got), maxProblems)
	}
	if want := "2026-12-01T22:50:00Z bootenv: problem D; second line"; got[0] != want {
		t.Errorf("oldest kept line: got %q, want %q", got[0], want)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600 (the agent's files are not for other users)", fi.Mode().Perm())
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
