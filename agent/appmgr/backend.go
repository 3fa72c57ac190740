package appmgr

import (
	"fmt"
	"os"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/confine/cgroup"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// Backend is what the app manager's changes do to the system: mounts,
// profiles, sandboxes, cgroups and data, each for one app (by name) and
// revision. The manager keeps the state; the backend only acts, so that
// every handler's do and undo can be tested with a fake (fake_test.go),
// in the manner of snapd's managerBackend. Every method is idempotent.
type Backend interface {
	// PackageSize returns the size of the stored package of the revision.
	PackageSize(name string, rev int) (int64, error)
	// SaveAssertions keeps the verified assertions of the revision.
	SaveAssertions(name string, rev int, bundle []byte) error

	// Mount mounts the revision's package read-only; Unmount undoes it.
	Mount(name string, rev int) error
	Unmount(name string, rev int) error
	// ReadManifest reads the manifest of the mounted package, checked.
	ReadManifest(name string, rev int) (*manifest.Manifest, error)
	// KeepManifest keeps mf as the manifest of revision rev of its app;
	// KeptManifest reads it back (an error wrapping os.ErrNotExist when
	// none is kept).
	KeepManifest(rev int, mf *manifest.Manifest) error
	KeptManifest(name string, rev int) (*manifest.Manifest, error)
	// KeepGadget reads, checks and keeps the gadget.yaml of the mounted
	// revision of a gadget package; KeptGadget reads it back.
	KeepGadget(name string, rev int) error
	KeptGadget(name string, rev int) (*gadget.Gadget, error)

	// GenerateProfiles computes and keeps the policies and compiled
	// profiles of the revision's commands.
	GenerateProfiles(rev int, mf *manifest.Manifest, arch string, conns []policy.Connection) error
	// Policies returns the kept policies of the revision's commands (those
	// it has), by command, before GenerateProfiles replaces them;
	// ApplyPolicies makes the commands' running processes follow their
	// policies now, changed from old (launch.ApplyPolicy), and returns the
	// processes it stopped.
	Policies(name string, rev int, mf *manifest.Manifest) map[string]*profiles.Policy
	ApplyPolicies(name string, rev int, mf *manifest.Manifest, old map[string]*profiles.Policy) (stopped []int, err error)
	// RemoveProfiles removes the revision's profiles, policies and kept
	// manifest.
	RemoveProfiles(name string, rev int) error
	// LoadAppArmor loads the revision's AppArmor profiles, where the kernel
	// has AppArmor.
	LoadAppArmor(name string, rev int, mf *manifest.Manifest) error

	// CreateData makes the revision's data, copied from revision from
	// (0: none), owned by owner; RemoveData and RemoveCommonData remove
	// the revision's and the app's shared data.
	CreateData(name string, rev, from int, owner revisions.Owner) error
	RemoveData(name string, rev int) error
	RemoveCommonData(name string) error

	// SetCurrent points the app's current links at the revision;
	// ClearCurrent removes them.
	SetCurrent(name string, rev int) error
	ClearCurrent(name string) error

	// StopSandboxes stops the kept sandboxes of the revision (0: of every
	// revision) with what runs in them.
	StopSandboxes(name string, rev int) error
	// DeleteCgroup removes the cgroup of the app's command cmd.
	DeleteCgroup(name, cmd string) error
	// RetireSandboxes asks every kept sandbox to end (idle ones at once).
	RetireSandboxes()

	// Discard unmounts the revision and removes its package, assertions
	// and data; RemoveApp removes what is left of the app.
	Discard(name string, rev int) error
	RemoveApp(name string) error
}

// realBackend is the Backend of a device: ota/revisions, the profiles
// and policies, and the launcher's sandboxes and cgroups.
type realBackend struct{}

var _ Backend = realBackend{}

func (realBackend) PackageSize(name string, rev int) (int64, error) {
	fi, err := os.Stat(revisions.BlobPath(name, rev))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (realBackend) SaveAssertions(name string, rev int, bundle []byte) error {
	return revisions.SaveAssertions(name, rev, bundle)
}

func (realBackend) Mount(name string, rev int) error   { return revisions.Mount(name, rev) }
func (realBackend) Unmount(name string, rev int) error { return revisions.Unmount(name, rev) }

func (realBackend) ReadManifest(name string, rev int) (*manifest.Manifest, error) {
	return revisions.ReadManifest(name, rev)
}

func (realBackend) KeepManifest(rev int, mf *manifest.Manifest) error {
	return revisions.SaveManifest(rev, mf)
}

func (realBackend) KeptManifest(name string, rev int) (*manifest.Manifest, error) {
	return revisions.LoadManifest(name, rev)
}

func (realBackend) KeepGadget(name string, rev int) error { return keepGadget(name, rev) }

func (realBackend) KeptGadget(name string, rev int) (*gadget.Gadget, error) {
	return loadGadget(name, rev)
}

func (realBackend) GenerateProfiles(rev int, mf *manifest.Manifest, arch string, conns []policy.Connection) error {
	// The commands' policies, resolved from the manifest, the connections
	// and the interface catalog, and the profiles compiled from them.
	return policy.Generate(mf, rev, arch, conns)
}

func (realBackend) RemoveProfiles(name string, rev int) error { return profiles.Remove(name, rev) }

func (realBackend) Policies(name string, rev int, mf *manifest.Manifest) map[string]*profiles.Policy {
	out := map[string]*profiles.Policy{}
	for _, cmd := range policy.Commands(mf) {
		if p, _, err := profiles.LoadPolicy(name, rev, cmd); err == nil {
			out[cmd] = p
		}
	}
	return out
}

func (realBackend) ApplyPolicies(name string, rev int, mf *manifest.Manifest, old map[string]*profiles.Policy) ([]int, error) {
	var stopped []int
	for _, cmd := range policy.Commands(mf) {
		p, _, err := profiles.LoadPolicy(name, rev, cmd)
		if err != nil {
			return stopped, err
		}
		s, err := launch.ApplyPolicy(old[cmd], p)
		stopped = append(stopped, s...)
		if err != nil {
			return stopped, fmt.Errorf("cannot apply the new policy of %s to its running processes: %w", profiles.Label(name, cmd), err)
		}
	}
	return stopped, nil
}

func (realBackend) LoadAppArmor(name string, rev int, mf *manifest.Manifest) error {
	return profiles.LoadAppArmor(name, rev, policy.Commands(mf))
}

func (realBackend) CreateData(name string, rev, from int, owner revisions.Owner) error {
	return revisions.CreateData(name, rev, from, owner)
}

func (realBackend) RemoveData(name string, rev int) error { return revisions.RemoveData(name, rev) }
func (realBackend) RemoveCommonData(name string) error    { return revisions.RemoveCommonData(name) }
func (realBackend) SetCurrent(name string, rev int) error { return revisions.SetCurrent(name, rev) }
func (realBackend) ClearCurrent(name string) error        { return revisions.ClearCurrent(name) }

func (realBackend) StopSandboxes(name string, rev int) error { return launch.StopSandboxes(name, rev) }

func (realBackend) DeleteCgroup(name, cmd string) error {
	return cgroup.Delete(profiles.Label(name, cmd))
}

func (realBackend) RetireSandboxes() { launch.RetireSandboxes() }

func (realBackend) Discard(name string, rev int) error { return revisions.Discard(name, rev) }
func (realBackend) RemoveApp(name string) error        { return revisions.RemoveApp(name) }
