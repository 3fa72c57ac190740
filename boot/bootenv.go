package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Env is the boot environment: which base slot to boot (see the package
// documentation for the record format and the rule).
type Env struct {
	Slot      string // the known-good slot, "a" or "b"
	Try       string // a slot to try, or ""
	Trying    string // the slot being tried, or ""
	BootCount int    // boots of the tried slot so far
	// Attempts is how many boots the tried slot gets before init falls
	// back to Slot; 0 means 1.
	Attempts int
	// Bad is a slot init must not boot, or "": one being written
	// (BadWhy is WhyWriting) or one whose try failed (BadWhy says why).
	Bad    string
	BadWhy string
	// Last is the last try of a base: its slot, how it ended and why.
	Last Attempt
}

// An Attempt is the record of a try of a base slot.
type Attempt struct {
	Slot   string // the slot tried, "" when none was
	Result string // ResultTrying, ResultCommitted or ResultFailed
	Reason string // why it failed (one line), or ""
	Boots  int    // the boots it had
}

// The results of an Attempt, and the BadWhy of a slot being written.
const (
	ResultTrying    = "trying"
	ResultCommitted = "committed"
	ResultFailed    = "failed"
	WhyWriting      = "writing"
)

// maxText bounds a reason in the record, so that any valid record fits.
const maxText = 512

const (
	recordSize   = 4096
	envSize      = 2 * recordSize
	recordHeader = "paddock-bootenv-1\n"
	trailerSize  = 8 // sequence, then CRC-32, both big-endian
)

// ErrBadEnv is wrapped by Read when neither copy of the environment is valid.
var ErrBadEnv = errors.New("no valid copy")

// defaultEnv is the environment of a zeroed bootenv partition.
func defaultEnv() *Env { return &Env{Slot: "a"} }

// copyState is one of the two copies as read from the disk.
type copyState struct {
	env   *Env
	seq   uint32
	blank bool  // all zeros: never written, reads as the default with sequence 0
	err   error // not valid
}

// Read reads the boot environment from path, a bootenv partition or a file:
// the valid copy with the higher sequence. A zeroed partition reads as the
// default environment (slot a); two damaged copies are an error.
func Read(path string) (*Env, error) {
	copies, err := readCopies(path)
	if err != nil {
		return nil, err
	}
	i, err := newest(copies)
	if err != nil {
		return nil, fmt.Errorf("bootenv %s: %w", path, err)
	}
	e := *copies[i].env
	return &e, nil
}

// Write writes e over the older copy of the environment at path, at its
// fixed place, and syncs it, so a power cut during the write leaves the
// newer copy intact. The file must exist; it is never created or truncated.
func Write(path string, e *Env) error {
	copies, err := readCopies(path)
	if err != nil {
		return err
	}
	target, seq := 0, uint32(1) // both damaged, or both blank: start over at copy 1
	if i, err := newest(copies); err == nil && !(copies[0].blank && copies[1].blank) {
		target, seq = 1-i, copies[i].seq+1
	}
	rec, err := encodeRecord(e, seq)
	if err != nil {
		return fmt.Errorf("bootenv %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot write bootenv: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(rec, int64(target)*recordSize); err != nil {
		return fmt.Errorf("cannot write bootenv: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot write bootenv: %w", err)
	}
	return f.Close()
}

// readCopies reads both copies; a short file reads as zeros past its end.
// A copy that cannot be read (an I/O error in its sectors) is damaged; a
// file that cannot be opened is an error.
func readCopies(path string) ([2]copyState, error) {
	var copies [2]copyState
	f, err := os.Open(path)
	if err != nil {
		return copies, fmt.Errorf("cannot read bootenv: %w", err)
	}
	defer f.Close()
	for i := range copies {
		buf := make([]byte, recordSize)
		if _, err := f.ReadAt(buf, int64(i)*recordSize); err != nil && err != io.EOF {
			copies[i] = copyState{err: fmt.Errorf("cannot read it: %w", err)}
			continue
		}
		copies[i] = parseCopy(buf)
	}
	return copies, nil
}

func parseCopy(rec []byte) copyState {
	if isZero(rec) {
		return copyState{env: defaultEnv(), blank: true}
	}
	e, seq, err := parseRecord(rec)
	return copyState{env: e, seq: seq, err: err}
}

// newest returns the index of the valid copy with the higher sequence; on a
// tie the first copy wins.
func newest(c [2]copyState) (int, error) {
	switch {
	case c[0].err != nil && c[1].err != nil:
		return 0, fmt.Errorf("%w: copy 1: %v; copy 2: %v", ErrBadEnv, c[0].err, c[1].err)
	case c[0].err != nil:
		return 1, nil
	case c[1].err != nil:
		return 0, nil
	case c[1].seq > c[0].seq:
		return 1, nil
	}
	return 0, nil
}

// parseRecord checks and parses one 4096-byte record.
func parseRecord(rec []byte) (*Env, uint32, error) {
	if len(rec) != recordSize {
		return nil, 0, fmt.Errorf("record is %d bytes, want %d", len(rec), recordSize)
	}
	body := rec[:recordSize-trailerSize]
	seq := binary.BigEndian.Uint32(rec[recordSize-8:])
	sum := binary.BigEndian.Uint32(rec[recordSize-4:])
	if got := crc32.ChecksumIEEE(body); got != sum {
		return nil, 0, fmt.Errorf("bad checksum %08x, want %08x", got, sum)
	}
	text, pad, _ := bytes.Cut(body, []byte{0})
	if !isZero(pad) {
		return nil, 0, errors.New("data after the NUL padding")
	}
	e, err := parseText(string(text))
	return e, seq, err
}

// parseText parses the header and key=value lines of a record.
func parseText(text string) (*Env, error) {
	rest, ok := strings.CutPrefix(text, recordHeader)
	if !ok {
		return nil, errors.New("no paddock-bootenv-1 header")
	}
	if rest != "" && !strings.HasSuffix(rest, "\n") {
		return nil, errors.New("last line not terminated")
	}
	// The errors name lines by number: the record's text is not echoed.
	e := &Env{}
	seen := map[string]bool{}
	n := 1 // the header
	for line := range strings.Lines(rest) {
		n++
		key, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			return nil, fmt.Errorf("line %d is not key=value", n)
		}
		if seen[key] {
			return nil, fmt.Errorf("line %d repeats a key", n)
		}
		seen[key] = true
		if err := e.set(key, value); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if e.Slot == "" {
		e.Slot = "a"
	}
	return e, nil
}

// set sets one key; unknown keys are ignored so that a newer writer's
// record still boots.
func (e *Env) set(key, value string) error {
	var field *string
	switch key {
	case "slot":
		field = &e.Slot
	case "try":
		field = &e.Try
	case "trying":
		field = &e.Trying
	case "boot_count", "attempts", "last_boots":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 1<<20 || value != strconv.Itoa(n) {
			return fmt.Errorf("%s is not a count", key)
		}
		*map[string]*int{"boot_count": &e.BootCount, "attempts": &e.Attempts, "last_boots": &e.Last.Boots}[key] = n
		return nil
	case "bad_why", "last_reason":
		if err := checkText(value); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		*map[string]*string{"bad_why": &e.BadWhy, "last_reason": &e.Last.Reason}[key] = value
		return nil
	case "last_result":
		switch value {
		case "", ResultTrying, ResultCommitted, ResultFailed:
			e.Last.Result = value
			return nil
		}
		return errors.New("last_result is not trying, committed or failed")
	case "bad":
		field = &e.Bad
	case "last_slot":
		field = &e.Last.Slot
	default:
		return nil
	}
	if value != "" && !validSlot(value) {
		return fmt.Errorf("%s is not a or b", key)
	}
	*field = value
	return nil
}

// encodeRecord builds the record of e with sequence seq.
func encodeRecord(e *Env, seq uint32) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(recordHeader)
	fmt.Fprintf(&b, "slot=%s\n", e.Slot)
	if e.Try != "" {
		fmt.Fprintf(&b, "try=%s\n", e.Try)
	}
	if e.Trying != "" {
		fmt.Fprintf(&b, "trying=%s\n", e.Trying)
	}
	fmt.Fprintf(&b, "boot_count=%d\n", e.BootCount)
	for _, kv := range []struct {
		key, value string
	}{
		{"attempts", countText(e.Attempts)}, {"bad", e.Bad}, {"bad_why", e.BadWhy},
		{"last_slot", e.Last.Slot}, {"last_result", e.Last.Result}, {"last_reason", e.Last.Reason},
		{"last_boots", countText(e.Last.Boots)},
	} {
		if kv.value != "" {
			fmt.Fprintf(&b, "%s=%s\n", kv.key, kv.value)
		}
	}
	rec := make([]byte, recordSize)
	copy(rec, b.String())
	binary.BigEndian.PutUint32(rec[recordSize-8:], seq)
	binary.BigEndian.PutUint32(rec[recordSize-4:], crc32.ChecksumIEEE(rec[:recordSize-trailerSize]))
	return rec, nil
}

// check reports whether e can be written.
func (e *Env) check() error {
	if !validSlot(e.Slot) {
		return fmt.Errorf("slot %q: want a or b", e.Slot)
	}
	for _, s := range []string{e.Try, e.Trying, e.Bad, e.Last.Slot} {
		if s != "" && !validSlot(s) {
			return fmt.Errorf("slot %q: want a or b", s)
		}
	}
	for _, n := range []int{e.BootCount, e.Attempts, e.Last.Boots} {
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("count %d out of range", n)
		}
	}
	for _, s := range []string{e.BadWhy, e.Last.Reason} {
		if err := checkText(s); err != nil {
			return err
		}
	}
	switch e.Last.Result {
	case "", ResultTrying, ResultCommitted, ResultFailed:
	default:
		return fmt.Errorf("result %q: want trying, committed or failed", e.Last.Result)
	}
	return nil
}

// checkText checks a free-text value: one line, no NUL, at most maxText bytes.
func checkText(s string) error {
	if len(s) > maxText {
		return fmt.Errorf("text of %d bytes, more than %d", len(s), maxText)
	}
	if strings.ContainsAny(s, "\n\x00") {
		return errors.New("text with a newline or a NUL")
	}
	return nil
}

// cleanText makes s a valid text value: one line, control characters as
// spaces, cut to maxText bytes.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	for len(s) > maxText {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// countText writes a count, leaving zero out.
func countText(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func validSlot(s string) bool { return s == "a" || s == "b" }

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Choose applies the boot rule to e: it returns the slot to boot and the
// environment to write before booting it (equal to e when nothing changes).
//
// A forced slot (paddock.slot) is booted as is and leaves the environment
// alone. Else, if a try is in progress (trying set) it has not committed
// yet: boot it again while it has attempts left (boot_count below
// attempts, counting this boot), else fall back: clear try and trying,
// mark the tried slot bad and record the failed attempt, and boot the
// known-good slot. Else, if try is set, move it to trying, count the first
// boot and boot it. Else boot slot. The known-good slot is never marked
// bad nor tried: a record that says so boots slot as is.
func Choose(e *Env, forced string) (slot string, next *Env) {
	n := *e
	if !validSlot(n.Slot) {
		n.Slot = "a"
	}
	switch {
	case forced != "":
		return forced, &n
	case n.Trying != "" && n.Trying != n.Slot && n.Trying != n.Bad && n.BootCount < n.attempts():
		n.BootCount++
		n.Last = Attempt{Slot: n.Trying, Result: ResultTrying, Boots: n.BootCount}
		return n.Trying, &n
	case n.Trying != "" && n.Trying != n.Slot:
		why := n.BadWhy
		if n.Bad != n.Trying || why == "" {
			why = fmt.Sprintf("not committed after %d boot(s)", n.BootCount)
			if n.Last.Slot == n.Trying && n.Last.Reason != "" {
				why += ": " + n.Last.Reason
			} else {
				why += ": it never got its agent ready (init failed, or the device hung and its watchdog reset it)"
			}
		}
		n.fail(n.Trying, why)
		return n.Slot, &n
	case n.Try != "" && n.Try != n.Slot && n.Try != n.Bad:
		n.Trying, n.Try = n.Try, ""
		n.BootCount = 1
		n.Last = Attempt{Slot: n.Trying, Result: ResultTrying, Boots: 1}
		return n.Trying, &n
	}
	n.Try, n.Trying = "", ""
	return n.Slot, &n
}

// attempts is the number of boots a try gets.
func (e *Env) attempts() int { return max(e.Attempts, 1) }

// fail ends the try of slot: it is marked bad with why, and the known-good
// slot is what boots.
func (e *Env) fail(slot, why string) {
	why = cleanText(why)
	boots := e.BootCount
	if e.Last.Slot == slot && e.Last.Boots > boots {
		boots = e.Last.Boots
	}
	e.Try, e.Trying, e.BootCount, e.Attempts = "", "", 0, 0
	e.Bad, e.BadWhy = slot, why
	e.Last = Attempt{Slot: slot, Result: ResultFailed, Reason: why, Boots: boots}
}
