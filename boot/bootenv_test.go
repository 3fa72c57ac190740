package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newEnvFile returns a zeroed bootenv file of size bytes.
func newEnvFile(t *testing.T, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bootenv")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadBlank(t *testing.T) {
	for _, size := range []int{1 << 20, envSize, 100, 0} {
		e, err := Read(newEnvFile(t, size))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if *e != (Env{Slot: "a"}) {
			t.Errorf("size %d: got %+v, want the default", size, *e)
		}
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("got no error for a missing file")
	}
	if err := Write(filepath.Join(t.TempDir(), "nope"), &Env{Slot: "a"}); err == nil {
		t.Error("Write created a missing file, want an error")
	}
}

func TestWriteAlternates(t *testing.T) {
	p := newEnvFile(t, 1<<20)
	envs := []Env{{Slot: "a", Try: "b"}, {Slot: "a", Trying: "b", BootCount: 1}, {Slot: "b"}, {Slot: "b", Try: "a"}}
	for i, want := range envs {
		if err := Write(p, &want); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if *got != want {
			t.Errorf("write %d: read %+v, want %+v", i, *got, want)
		}
		copies, _ := readCopies(p)
		if c := copies[i%2]; c.err != nil || c.seq != uint32(i+1) {
			t.Errorf("write %d: copy %d has seq %d err %v, want seq %d", i, i%2, c.seq, c.err, i+1)
		}
	}
	if fi, _ := os.Stat(p); fi.Size() != 1<<20 {
		t.Errorf("size %d after writes, want %d (in place)", fi.Size(), 1<<20)
	}
}

func TestWriteRejects(t *testing.T) {
	p := newEnvFile(t, envSize)
	for _, e := range []Env{{Slot: ""}, {Slot: "c"}, {Slot: "a", Try: "x"}, {Slot: "a", BootCount: -1}} {
		if err := Write(p, &e); err == nil {
			t.Errorf("Write(%+v): no error", e)
		}
	}
}

// corrupt flips a byte of copy i (0 or 1) at offset off within it.
func corrupt(t *testing.T, path string, i, off int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, int64(i*recordSize+off))
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, int64(i*recordSize+off)); err != nil {
		t.Fatal(err)
	}
}

func TestTornWrites(t *testing.T) {
	first, second := Env{Slot: "a", Try: "b"}, Env{Slot: "a", Trying: "b", BootCount: 1}
	tests := []struct {
		name    string
		writes  []Env
		damage  []int // copies to corrupt
		want    Env
		wantErr bool
	}{
		{"newer copy torn: older wins", []Env{first, second}, []int{1}, first, false},
		{"older copy torn: newer wins", []Env{first, second}, []int{0}, second, false},
		{"both torn", []Env{first, second}, []int{0, 1}, Env{}, true},
		{"first write torn: the blank default wins", []Env{first}, []int{0}, Env{Slot: "a"}, false},
		{"first write intact", []Env{first}, nil, first, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newEnvFile(t, envSize)
			for _, e := range tt.writes {
				if err := Write(p, &e); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range tt.damage {
				corrupt(t, p, i, 20)
			}
			got, err := Read(p)
			if tt.wantErr {
				if !errors.Is(err, ErrBadEnv) {
					t.Fatalf("got %v, want ErrBadEnv", err)
				}
				if !strings.Contains(err.Error(), "checksum") {
					t.Errorf("error %q does not say why", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
			// The next write goes over the damaged copy and is read back.
			next := Env{Slot: "b"}
			if err := Write(p, &next); err != nil {
				t.Fatal(err)
			}
			if got, err := Read(p); err != nil || *got != next {
				t.Errorf("after repair: got %+v, %v, want %+v", got, err, next)
			}
		})
	}
}

func TestSequenceTieFirstWins(t *testing.T) {
	p := newEnvFile(t, envSize)
	a, _ := encodeRecord(&Env{Slot: "a"}, 7)
	b, _ := encodeRecord(&Env{Slot: "b"}, 7)
	os.WriteFile(p, append(a, b...), 0o644)
	if e, _ := Read(p); e.Slot != "a" {
		t.Errorf("got slot %s, want a", e.Slot)
	}
}

func TestParseRecord(t *testing.T) {
	rec := func(text string) []byte {
		r := make([]byte, recordSize)
		copy(r, text)
		sealRecord(r, 1)
		return r
	}
	tests := []struct {
		name, text string
		want       *Env
	}{
		{"full", "paddock-bootenv-1\nslot=b\ntry=a\ntrying=a\nboot_count=3\n", &Env{Slot: "b", Try: "a", Trying: "a", BootCount: 3}},
		{"no slot means a", "paddock-bootenv-1\n", &Env{Slot: "a"}},
		{"update keys", "paddock-bootenv-1\nslot=a\ntrying=b\nboot_count=1\nattempts=3\nbad=b\nbad_why=agent unhealthy\n" +
			"last_slot=b\nlast_result=failed\nlast_reason=agent unhealthy\nlast_boots=2\n",
			&Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 3, Bad: "b", BadWhy: "agent unhealthy",
				Last: Attempt{Slot: "b", Result: ResultFailed, Reason: "agent unhealthy", Boots: 2}}},
		{"bad result", "paddock-bootenv-1\nlast_result=maybe\n", nil},
		{"bad bad slot", "paddock-bootenv-1\nbad=c\n", nil},
		{"reason too long", "paddock-bootenv-1\nbad_why=" + strings.Repeat("x", maxText+1) + "\n", nil},
		{"unknown key ignored", "paddock-bootenv-1\nslot=b\ncolour=red\n", &Env{Slot: "b"}},
		{"empty try", "paddock-bootenv-1\nslot=b\ntry=\n", &Env{Slot: "b"}},
		{"no header", "slot=b\n", nil},
		{"other version", "paddock-bootenv-2\nslot=b\n", nil},
		{"bad slot", "paddock-bootenv-1\nslot=c\n", nil},
		{"bad count", "paddock-bootenv-1\nboot_count=-1\n", nil},
		{"count with plus", "paddock-bootenv-1\nboot_count=+1\n", nil},
		{"twice", "paddock-bootenv-1\nslot=a\nslot=b\n", nil},
		{"not key=value", "paddock-bootenv-1\nslot\n", nil},
		{"unterminated", "paddock-bootenv-1\nslot=b", nil},
		{"text after padding", "paddock-bootenv-1\nslot=b\n\x00junk", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, seq, err := parseRecord(rec(tt.text))
			if tt.want == nil {
				if err == nil {
					t.Errorf("got %+v, want an error", *got)
				}
				return
			}
			if err != nil || *got != *tt.want || seq != 1 {
				t.Errorf("got %+v seq %d err %v, want %+v seq 1", got, seq, err, *tt.want)
			}
		})
	}
	if _, _, err := parseRecord(make([]byte, 10)); err == nil {
		t.Error("short record: no error")
	}
}

func TestChoose(t *testing.T) {
	trying := func(boots int) Attempt { return Attempt{Slot: "b", Result: ResultTrying, Boots: boots} }
	failed := func(why string, boots int) Attempt {
		return Attempt{Slot: "b", Result: ResultFailed, Reason: why, Boots: boots}
	}
	tests := []struct {
		name     string
		env      Env
		forced   string
		wantSlot string
		wantNext Env
	}{
		{"normal boot", Env{Slot: "a"}, "", "a", Env{Slot: "a"}},
		{"normal boot b", Env{Slot: "b", BootCount: 2}, "", "b", Env{Slot: "b", BootCount: 2}},
		{"try becomes trying", Env{Slot: "a", Try: "b"}, "", "b", Env{Slot: "a", Trying: "b", BootCount: 1, Last: trying(1)}},
		{"try with attempts", Env{Slot: "a", Try: "b", Attempts: 3}, "", "b",
			Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 3, Last: trying(1)}},
		{"second attempt", Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 3}, "", "b",
			Env{Slot: "a", Trying: "b", BootCount: 2, Attempts: 3, Last: trying(2)}},
		{"last attempt", Env{Slot: "a", Trying: "b", BootCount: 2, Attempts: 3}, "", "b",
			Env{Slot: "a", Trying: "b", BootCount: 3, Attempts: 3, Last: trying(3)}},
		{"attempts used up: fallback", Env{Slot: "a", Trying: "b", BootCount: 3, Attempts: 3, Last: trying(3)}, "", "a",
			Env{Slot: "a", Bad: "b", BadWhy: "not committed after 3 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", Last: failed("not committed after 3 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", 3)}},
		{"fallback after a failed try (no attempts: one)", Env{Slot: "a", Trying: "b", BootCount: 1}, "", "a",
			Env{Slot: "a", Bad: "b", BadWhy: "not committed after 1 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", Last: failed("not committed after 1 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", 1)}},
		{"fallback clears a new try too", Env{Slot: "a", Try: "b", Trying: "b", BootCount: 1}, "", "a",
			Env{Slot: "a", Bad: "b", BadWhy: "not committed after 1 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", Last: failed("not committed after 1 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", 1)}},
		{"a tried slot marked bad falls back with its reason", Env{Slot: "a", Trying: "b", BootCount: 1, Attempts: 3, Bad: "b", BadWhy: "unhealthy"}, "", "a",
			Env{Slot: "a", Bad: "b", BadWhy: "unhealthy", Last: failed("unhealthy", 1)}},
		{"a slot being written is not tried", Env{Slot: "a", Try: "b", Bad: "b", BadWhy: WhyWriting}, "", "a",
			Env{Slot: "a", Bad: "b", BadWhy: WhyWriting}},
		{"the known-good slot is not tried", Env{Slot: "a", Try: "a"}, "", "a", Env{Slot: "a"}},
		{"the known-good slot marked bad still boots", Env{Slot: "a", Bad: "a", BadWhy: "x"}, "", "a", Env{Slot: "a", Bad: "a", BadWhy: "x"}},
		{"forced leaves the env alone", Env{Slot: "a", Try: "b"}, "b", "b", Env{Slot: "a", Try: "b"}},
		{"forced during a try", Env{Slot: "a", Trying: "b", BootCount: 1}, "a", "a", Env{Slot: "a", Trying: "b", BootCount: 1}},
		{"empty slot is a", Env{}, "", "a", Env{Slot: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.env
			slot, next := Choose(&in, tt.forced)
			if slot != tt.wantSlot || *next != tt.wantNext {
				t.Errorf("got %s %+v, want %s %+v", slot, *next, tt.wantSlot, tt.wantNext)
			}
			if in != tt.env {
				t.Errorf("Choose changed its input to %+v", in)
			}
		})
	}
}

// TestTryCycle runs the update cycle through Read, Choose and Write: a
// try with two attempts that does not commit falls back after its second
// boot, and the record says so.
func TestTryCycle(t *testing.T) {
	p := newEnvFile(t, envSize)
	if err := SetTry(p, "b", 2); err != nil {
		t.Fatal(err)
	}
	var slots []string
	for range 4 {
		e, err := Read(p)
		if err != nil {
			t.Fatal(err)
		}
		slot, next := Choose(e, "")
		slots = append(slots, slot)
		if err := Write(p, next); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(slots, ","); got != "b,b,a,a" {
		t.Errorf("got boots %s, want b,b,a,a", got)
	}
	e, _ := Read(p)
	if want := (Attempt{Slot: "b", Result: ResultFailed, Reason: "not committed after 2 boot(s): it never got its agent ready (init failed, or the device hung and its watchdog reset it)", Boots: 2}); e.Last != want || e.Bad != "b" {
		t.Errorf("got %+v, want slot b bad and the last attempt %+v", *e, want)
	}
}
