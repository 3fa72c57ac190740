package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"paddock.dev/paddock/internal/atomicfile"
)

// RunRecordRel is where init records the boot it made, relative to the
// root: on the /run tmpfs, so it describes this boot only.
const RunRecordRel = "run/paddock/boot.json"

// A BootRecord is what init knows about the boot it made: which slot runs,
// whether it is a try, whether its base is verified, and where the
// partitions are. Init writes it at every boot (RunRecordRel); the agent
// reads it with Running.
type BootRecord struct {
	Slot  string `json:"slot"`            // the base slot running, "a" or "b"
	Tried bool   `json:"tried,omitempty"` // a try that has not committed
	// Verified says that the base is mounted through dm-verity with the
	// root hash of its signed assertion (RootHash), so the kernel checks
	// every block it reads; Revision and Version are the assertion's.
	Verified bool   `json:"verified"`
	RootHash string `json:"root-hash,omitempty"`
	Revision string `json:"revision,omitempty"`
	Version  string `json:"version,omitempty"`
	// Unverified says why a base is not verified (no trusted keys in the
	// initramfs: a development image), when it is not.
	Unverified string `json:"unverified,omitempty"`
	// Watchdog is the watchdog device init pets during a try, or "".
	Watchdog string `json:"watchdog,omitempty"`
	// Fallback says why this boot runs another slot than the boot rule
	// chose (its verity setup failed), or "".
	Fallback string `json:"fallback,omitempty"`
	// Bootenv is the device node of the bootenv partition; Partitions maps
	// each partition name (base-a, base-b, data, ...) to its node.
	Bootenv    string            `json:"bootenv"`
	Partitions map[string]string `json:"partitions"`
}

// Running returns the record of the current boot that init wrote. Not on
// a paddock device (no record) it returns an error wrapping
// fs.ErrNotExist.
func Running() (*BootRecord, error) {
	b, err := os.ReadFile(filepath.Join(rootDir, RunRecordRel))
	if err != nil {
		return nil, fmt.Errorf("cannot tell how this device booted: %w", err)
	}
	var r BootRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cannot tell how this device booted: %s: %w", RunRecordRel, err)
	}
	return &r, nil
}

// writeRunRecord writes r at root/RunRecordRel.
func writeRunRecord(root string, r *BootRecord) error {
	p := filepath.Join(root, RunRecordRel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cannot record the boot: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot record the boot: %w", err)
	}
	return nil
}

// Slot states in a Status.
const (
	StateGood    = "good"    // the known-good slot
	StateTry     = "try"     // to be tried at the next boot
	StateTrying  = "trying"  // being tried, not committed
	StateWriting = "writing" // being written: not bootable
	StateBad     = "bad"     // its try failed: not bootable
	StateOther   = "other"   // the other slot, bootable only by paddock.slot
)

// SlotStatus is the state of one base slot.
type SlotStatus struct {
	Name    string `json:"name"`  // "a" or "b"
	State   string `json:"state"` // one of the State* constants
	Why     string `json:"why,omitempty"`
	Running bool   `json:"running,omitempty"`
}

// Status is what 'paddock base status' shows of the boot side.
type Status struct {
	Boot  *BootRecord  `json:"boot"`  // this boot (Running)
	Env   *Env         `json:"env"`   // the boot environment as it is now
	Slots []SlotStatus `json:"slots"` // a, then b
	// Last is the last try of a base and how it ended (Env.Last).
	Last Attempt `json:"last"`
}

// ReadStatus returns the boot side of the device's base status: this
// boot's record and the boot environment, read from the bootenv partition
// the record names.
func ReadStatus() (*Status, error) {
	rec, err := Running()
	if err != nil {
		return nil, err
	}
	if rec.Bootenv == "" {
		return nil, errors.New("cannot read the boot environment: the boot record names no bootenv partition")
	}
	env, err := Read(rec.Bootenv)
	if err != nil {
		return nil, err
	}
	return statusOf(rec, env), nil
}

func statusOf(rec *BootRecord, env *Env) *Status {
	st := &Status{Boot: rec, Env: env, Last: env.Last}
	for _, name := range []string{"a", "b"} {
		s := SlotStatus{Name: name, State: StateOther, Running: rec.Slot == name}
		switch name {
		case env.Slot:
			s.State = StateGood
		case env.Trying:
			s.State = StateTrying
		case env.Try:
			s.State = StateTry
		case env.Bad:
			s.State, s.Why = StateBad, env.BadWhy
			if env.BadWhy == WhyWriting {
				s.State, s.Why = StateWriting, ""
			}
		}
		st.Slots = append(st.Slots, s)
	}
	return st
}

// Advice tells the operator what to do after the attempt a, from the
// story its reason tells (the phrases init, its try monitor and the
// agent's base manager write); "" when there is nothing to do.
func (a Attempt) Advice() string {
	r := a.Reason
	switch {
	case a.Result == ResultTrying:
		return fmt.Sprintf("slot %s is being tried: the device commits it once healthy, or goes back to the known-good slot by itself", a.Slot)
	case a.Result != ResultFailed:
		return ""
	case strings.Contains(r, "refused at boot"):
		return "the slot did not match its signed base (a bad write, failing storage, or tampering): update again; if it fails the same way, check the device's storage"
	case strings.Contains(r, "unhealthy for"):
		return "the new base booted, but the device was not healthy in time: fix what the reason names (the fleet link, a service, an app) in the base or the device, or give the base a longer 'base: health-window' in its agent.yaml, then update again"
	case strings.Contains(r, "was not ready within"):
		return "the new base's agent never got ready: check its agent.yaml and the agent's log on a test device (paddock.trace=1), or raise paddock.trywait on a slow device, then update to a fixed revision"
	case strings.Contains(r, "never got its agent ready"):
		return "the new base failed before its agent started: its init or kernel panicked, or it hung and the watchdog reset it; boot it on a test device with paddock.trace=1, read the console, then update to a fixed revision"
	case strings.Contains(r, "stopped answering"), strings.Contains(r, "was ready, but it did not commit"):
		return "the new base's agent started, then hung or the device reset before it committed (the watchdog, or a reboot by hand): read the agent's log on a test device, then update to a fixed revision, or update again if someone rebooted it"
	}
	return "the device went back to the known-good slot: see the reason, then update to a fixed revision"
}
