package boot

import (
	"errors"
	"fmt"
	"sync"
)

// The changes a base update makes to the boot environment. Each reads the
// environment at path (a bootenv partition), checks that the change is
// allowed, and writes it with Write: over the older copy, synced, so that
// a power cut at any point leaves either the old or the new environment,
// and always the known-good slot. The agent calls them in this order:
//
//	MarkWriting(slot)        before the first byte of the slot is written
//	SetTry(slot, attempts)   once the slot is written and verified; then reboot
//	Commit(slot)             in the tried boot, once the device is healthy
//	MarkBad(slot, reason)    in the tried boot, when it is not; then reboot
//
// The known-good slot is never marked, tried or committed over: the
// fallback cannot be lost. A change that is already in effect (a second
// Commit after a crash between the write and its answer) is not an error.

// ErrTryInProgress is wrapped by the changes refused because the current
// boot is a try that has not committed: its fallback must stay as it is.
var ErrTryInProgress = errors.New("a tried base has not committed yet")

// updateMu serializes the changes of one process.
var updateMu sync.Mutex

// update reads the environment at path, lets change edit it and writes it
// back when it changed.
func update(path string, change func(e *Env) error) error {
	updateMu.Lock()
	defer updateMu.Unlock()
	e, err := Read(path)
	if err != nil {
		return err
	}
	next := *e
	if err := change(&next); err != nil {
		return err
	}
	if next == *e {
		return nil
	}
	return Write(path, &next)
}

// checkOther checks that slot is a slot and not the known-good one.
func (e *Env) checkOther(slot, what string) error {
	if !validSlot(slot) {
		return fmt.Errorf("cannot %s slot %q: want a or b", what, slot)
	}
	if slot == e.Slot {
		return fmt.Errorf("cannot %s slot %s: it is the known-good slot, the device's fallback", what, slot)
	}
	return nil
}

// MarkWriting marks slot not bootable before a base update writes it: a
// power cut during the write must not leave a half-written slot that init
// would boot. It clears a pending try of that slot. It refuses the
// known-good slot and, while a tried slot has not committed, any slot
// (ErrTryInProgress): writing either would lose a base to boot.
func MarkWriting(path, slot string) error {
	return update(path, func(e *Env) error {
		if err := e.checkOther(slot, "write"); err != nil {
			return err
		}
		if e.Trying != "" {
			return fmt.Errorf("cannot write slot %s: %w (slot %s, boot %d of %d): commit it or let it fall back first",
				slot, ErrTryInProgress, e.Trying, e.BootCount, e.attempts())
		}
		if e.Try == slot {
			e.Try = ""
		}
		e.Bad, e.BadWhy = slot, WhyWriting
		return nil
	})
}

// SetTry makes init boot slot next, for up to attempts boots (at least 1)
// until it commits; after that init falls back to the known-good slot. The
// slot must be written and verified: SetTry clears its not-bootable mark.
// It refuses the known-good slot and, while another try has not
// committed, any slot (ErrTryInProgress).
func SetTry(path, slot string, attempts int) error {
	if attempts < 1 || attempts > 100 {
		return fmt.Errorf("cannot try slot %s: %d attempts, want 1 to 100", slot, attempts)
	}
	return update(path, func(e *Env) error {
		if err := e.checkOther(slot, "try"); err != nil {
			return err
		}
		if e.Trying != "" {
			return fmt.Errorf("cannot try slot %s: %w (slot %s)", slot, ErrTryInProgress, e.Trying)
		}
		e.Try, e.Attempts, e.BootCount = slot, attempts, 0
		if e.Bad == slot {
			e.Bad, e.BadWhy = "", ""
		}
		e.Last = Attempt{Slot: slot, Result: ResultTrying}
		return nil
	})
}

// Commit makes the tried slot the known-good one: slot becomes slot=, the
// try ends, and the old slot is the fallback from now on. It refuses a
// slot that is not being tried, unless it is the known-good slot already
// (a repeated Commit).
func Commit(path, slot string) error {
	return update(path, func(e *Env) error {
		if !validSlot(slot) {
			return fmt.Errorf("cannot commit slot %q: want a or b", slot)
		}
		if e.Slot == slot && e.Trying == "" {
			return nil // committed already
		}
		if e.Trying != slot {
			return fmt.Errorf("cannot commit slot %s: it is not being tried (known-good slot %s, tried %q)", slot, e.Slot, e.Trying)
		}
		e.Last = Attempt{Slot: slot, Result: ResultCommitted, Boots: max(e.BootCount, 1)}
		e.Slot, e.Try, e.Trying, e.BootCount, e.Attempts = slot, "", "", 0, 0
		if e.Bad == slot {
			e.Bad, e.BadWhy = "", ""
		}
		return nil
	})
}

// MarkBad ends the try of slot as failed, with reason (one line: the
// agent's health report): init will not boot it again and boots the
// known-good slot next. The caller reboots. It refuses the known-good
// slot.
func MarkBad(path, slot, reason string) error {
	return update(path, func(e *Env) error {
		if err := e.checkOther(slot, "mark bad"); err != nil {
			return err
		}
		if reason == "" {
			reason = "marked bad"
		}
		if e.Trying == slot || e.Try == slot || e.Last.Slot == slot && e.Last.Result == ResultTrying {
			e.fail(slot, reason)
		} else {
			e.Bad, e.BadWhy = slot, cleanText(reason)
		}
		return nil
	})
}
