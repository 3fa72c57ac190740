package boot

import (
	"fmt"
	"strings"
)

// A Repair says what Load found wrong with a boot environment and what it
// did about it.
type Repair struct {
	// Damaged are the damaged copies (1, 2 or both), with why in Reasons.
	Damaged []int
	Reasons []string
	// Reset is set when no copy was valid: Load returned the default
	// environment (slot a) and wrote it to both copies.
	Reset bool
	// Err, when set, is why the repair could not be written; the
	// environment Load returned is still the one to boot by.
	Err error
}

// String describes the repair in one line, for the console and the record.
func (r *Repair) String() string {
	var what []string
	for i, c := range r.Damaged {
		what = append(what, fmt.Sprintf("copy %d damaged (%s)", c, r.Reasons[i]))
	}
	s := strings.Join(what, ", ")
	if len(r.Reasons) == 2 && r.Reasons[0] == r.Reasons[1] {
		s = fmt.Sprintf("copies 1 and 2 damaged (%s)", r.Reasons[0])
	}
	switch {
	case r.Reset:
		s += ": no valid copy, booting the default slot a"
		if r.Err == nil {
			s += ", both copies rewritten"
		}
	case r.Err == nil:
		s += fmt.Sprintf(": repaired from copy %d", 3-r.Damaged[0])
	}
	if r.Err != nil {
		s += "; cannot repair it: " + oneLine(r.Err.Error())
	}
	return s
}

// Load reads the boot environment at path as Read does, but a damaged
// environment never stops it: a damaged copy is rewritten from the valid
// one; when neither copy is valid, or the environment cannot be read at
// all, it returns the default environment (slot a) and writes it to both
// copies. The Repair says what was wrong and what was done; it is nil when
// both copies were good (a blank copy, never written, is good).
func Load(path string) (*Env, *Repair) {
	copies, err := readCopies(path)
	if err != nil {
		why := oneLine(err.Error())
		r := &Repair{Damaged: []int{1, 2}, Reasons: []string{why, why}, Reset: true}
		r.Err = writeTwice(path, defaultEnv())
		return defaultEnv(), r
	}
	r := &Repair{}
	for i, c := range copies {
		if c.err != nil {
			r.Damaged = append(r.Damaged, i+1)
			r.Reasons = append(r.Reasons, oneLine(c.err.Error()))
		}
	}
	i, err := newest(copies)
	if err != nil { // both damaged
		r.Reset = true
		r.Err = writeTwice(path, defaultEnv())
		return defaultEnv(), r
	}
	e := *copies[i].env
	if len(r.Damaged) == 0 {
		return &e, nil
	}
	// Write goes over the older copy, which is the damaged one.
	r.Err = Write(path, &e)
	return &e, r
}

// writeTwice writes e to both copies: the first write goes to copy 1 (no
// copy is valid), the second over copy 2, the older one.
func writeTwice(path string, e *Env) error {
	if err := Write(path, e); err != nil {
		return err
	}
	return Write(path, e)
}
