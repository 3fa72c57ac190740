// Package basemgr is the agent's base manager: it updates the base in the
// inactive A/B slot as a change that spans a reboot (check-base,
// write-base, verify-base, set-try, reboot, commit-base), and reports the
// slots. In the tried boot, commit-base waits for the device to be healthy
// within a window and commits the slot through the boot environment
// (boot.Commit); unhealthy, it marks the slot bad and reboots to the old
// one, and the change ends with "rolled back: REASON". A try that init
// refuses (dm-verity, a panic, the watchdog) ends the same way, with the
// reason init recorded.
package basemgr

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/partition"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/fetch"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// ChangeKind is the kind of a base update's change.
const ChangeKind = "base-update"

// CommandKey is where a change records the fleet command that asked for
// it (the same key as the app manager's).
const CommandKey = "fleet-command"

// ErrRefused marks an update refused for what it carried: a bad
// signature, a lower revision, another architecture.
var ErrRefused = errors.New("refused")

type refusedError struct{ err error }

func (e refusedError) Error() string        { return e.err.Error() }
func (e refusedError) Unwrap() error        { return e.err }
func (e refusedError) Is(target error) bool { return target == ErrRefused }

// Gate says whether the device is healthy enough to commit a tried base,
// and if not why.
type Gate func() (ok bool, why string)

// Manager updates and reports the base.
type Manager struct {
	st        *state.State
	runner    *state.Runner
	log       *slog.Logger
	wake      func()
	conflicts *manager.Conflicts
	// Arch is the device's architecture.
	Arch string
	// Reboot restarts the machine; nil where the agent may not (a test
	// root): the update then waits for a reboot by hand.
	Reboot func() error
	// Gate is the health a tried base must show to be committed; nil
	// means the agent being up is enough.
	Gate Gate
	// HealthWindow is how long a tried base has to become healthy.
	HealthWindow time.Duration
	// Attempts is how many boots a tried base gets.
	Attempts int
	// Download bounds artifact downloads (agent.yaml's download:).
	Download fetch.Limits
	// bootID names this boot; tests swap it.
	bootID func() string
	now    func() time.Time
	// poll is how often a task that waits (for a reboot, for health)
	// looks again.
	poll time.Duration
	// rebooting is set once a reboot is asked for in this boot.
	rebooting bool
	// downloadRetry is how long a write whose download failed waits
	// before it runs again.
	downloadRetry time.Duration
}

// New returns the base manager and registers its task handlers.
func New(env manager.Env) *Manager {
	m := &Manager{st: env.State, runner: env.Runner, log: env.Log, wake: env.Wake, conflicts: env.Conflicts,
		Arch: arch.Native(), HealthWindow: 2 * time.Minute, Attempts: 2, bootID: readBootID, now: time.Now, poll: 5 * time.Second, downloadRetry: 10 * time.Second}
	for kind, do := range map[string]state.HandlerFunc{
		"check-base":  m.doCheck,
		"write-base":  m.doWrite,
		"verify-base": m.doVerify,
		"set-try":     m.doSetTry,
		"reboot":      m.doReboot,
		"commit-base": m.doCommit,
	} {
		m.runner.AddHandler(kind, do, nil)
	}
	// A base update runs alone: no app change beside it, and none while
	// it is in progress (it spans a reboot).
	env.Conflicts.AddRule(func(key string, inFlight []string) bool {
		if key == updateKey {
			return len(inFlight) > 0
		}
		for _, k := range inFlight {
			if k == updateKey {
				return true
			}
		}
		return false
	})
	return m
}

// updateKey is the conflict key of a base update.
var updateKey = manager.BaseKey("update")

// Ensure has nothing to do between changes.
func (m *Manager) Ensure() error { return nil }

// bootIDRel is where the kernel gives the id of this boot, under the
// root: /proc on a device; in a test root (PADDOCK_ROOT), a file the test
// changes when it plays a reboot.
const bootIDRel = "proc/sys/kernel/random/boot_id"

// readBootID reads the kernel's id of this boot.
func readBootID() string {
	b, err := os.ReadFile(filepath.Join(dirs.Root, bootIDRel))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// assertionPath is where the assertions of the base in slot are kept.
func assertionPath(slot string) string {
	return filepath.Join(dirs.LibDir, filepath.FromSlash(partition.BaseAssertion(slot)))
}

// checkpointPath is where the update of slot records how far it got.
func checkpointPath(slot string) string {
	return filepath.Join(dirs.LibDir, partition.BootDir, partition.Base(slot)+".checkpoint")
}

// runningBase reads the base-revision of the base in slot, as kept on the
// data partition; nil when there is none or it cannot be read.
func runningBase(slot string) *assert.BaseRevision {
	data, err := os.ReadFile(assertionPath(slot))
	if err != nil {
		return nil
	}
	as, err := assert.DecodeBundle(data)
	if err != nil {
		return nil
	}
	for _, a := range as {
		if a.Type() == assert.BaseRevisionType {
			if r, err := assert.ParseBaseRevision(a); err == nil {
				return r
			}
		}
	}
	return nil
}

// other returns the other slot.
func other(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

// checkBundle checks a base-revision bundle against the trusted keys, the
// device's architecture and the running base.
func (m *Manager) checkBundle(bundle []byte, rec *boot.BootRecord) (*trust.Base, error) {
	trusted, err := keys.LoadTrusted()
	if err != nil {
		return nil, err
	}
	var running trust.Running
	if r := runningBase(rec.Slot); r != nil {
		running = trust.Running{Revision: r.Revision, SignKey: r.SignKey}
	}
	b, err := trust.CheckBase(bundle, trusted, m.now(), m.Arch, running)
	if err != nil {
		return nil, refusedError{fmt.Errorf("cannot update the base: %w", err)}
	}
	return b, nil
}

// bootRecord reads how this boot was made, and refuses a device without
// A/B slots.
func bootRecord() (*boot.BootRecord, error) {
	rec, err := boot.Running()
	if err != nil {
		return nil, fmt.Errorf("cannot update the base: %w (is this a paddock device booted by 'paddock init'?)", err)
	}
	if rec.Bootenv == "" || rec.Partitions[partition.Base(other(rec.Slot))] == "" {
		return nil, fmt.Errorf("cannot update the base: the boot record names no bootenv or no %s partition", partition.Base(other(rec.Slot)))
	}
	return rec, nil
}

func assertionDir() string { return filepath.Join(dirs.LibDir, partition.BootDir) }
