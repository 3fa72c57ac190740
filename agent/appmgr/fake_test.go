package appmgr

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// fakeBackend is a Backend that keeps the system it models in memory: it
// records every call ("Mount hello 2") and fails the one named in fail,
// with errFake, leaving its world as it was.
type fakeBackend struct {
	calls []string
	fail  string

	packages   map[string]int64              // "hello/2" → size of the stored package
	contents   map[string]*manifest.Manifest // "hello/2" → the manifest in the package
	assertions map[string]bool
	mounted    map[string]bool
	kept       map[string]*manifest.Manifest
	profiles   map[string]bool
	apparmor   map[string]bool
	data       map[string]revisions.Owner
	common     map[string]bool // by app
	current    map[string]int  // by app
	// gadgetContents is the gadget.yaml in a gadget package, gadgets what
	// KeepGadget kept ("pc/1").
	gadgetContents, gadgets map[string]*gadget.Gadget
	// connections are those the profiles of a revision were generated with.
	connections map[string][]policy.Connection
}

var _ Backend = (*fakeBackend)(nil)

var errFake = errors.New("fake failure")

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		packages: map[string]int64{}, contents: map[string]*manifest.Manifest{}, assertions: map[string]bool{},
		mounted: map[string]bool{}, kept: map[string]*manifest.Manifest{}, profiles: map[string]bool{},
		apparmor: map[string]bool{}, data: map[string]revisions.Owner{}, common: map[string]bool{}, current: map[string]int{},
		gadgetContents: map[string]*gadget.Gadget{}, gadgets: map[string]*gadget.Gadget{},
		connections: map[string][]policy.Connection{},
	}
}

func key(name string, rev int) string { return fmt.Sprintf("%s/%d", name, rev) }

// addPackage stores a package of revision rev of app name, as Install does.
func (f *fakeBackend) addPackage(name string, rev int, size int64) {
	f.packages[key(name, rev)] = size
	f.contents[key(name, rev)] = &manifest.Manifest{
		Name: name, Version: "1.0", Type: "app",
		Apps: map[string]*manifest.App{"hello": {Command: "bin/hello"}},
	}
}

// call records a call and fails it if it is the one to fail.
func (f *fakeBackend) call(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, c)
	if c == f.fail {
		return fmt.Errorf("%s: %w", c, errFake)
	}
	return nil
}

// world describes what the fake holds, sorted, for comparisons.
func (f *fakeBackend) world() string {
	var out []string
	add := func(what string, m map[string]bool) {
		for k, ok := range m {
			if ok {
				out = append(out, what+" "+k)
			}
		}
	}
	for k := range f.packages {
		out = append(out, "package "+k)
	}
	for k := range f.kept {
		out = append(out, "kept "+k)
	}
	for k := range f.data {
		out = append(out, "data "+k)
	}
	for k, rev := range f.current {
		out = append(out, fmt.Sprintf("current %s/%d", k, rev))
	}
	add("assertions", f.assertions)
	add("mounted", f.mounted)
	add("profiles", f.profiles)
	add("apparmor", f.apparmor)
	add("common", f.common)
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func (f *fakeBackend) PackageSize(name string, rev int) (int64, error) {
	if err := f.call("PackageSize %s %d", name, rev); err != nil {
		return 0, err
	}
	size, ok := f.packages[key(name, rev)]
	if !ok {
		return 0, os.ErrNotExist
	}
	return size, nil
}

func (f *fakeBackend) SaveAssertions(name string, rev int, bundle []byte) error {
	if err := f.call("SaveAssertions %s %d", name, rev); err != nil {
		return err
	}
	f.assertions[key(name, rev)] = true
	return nil
}

func (f *fakeBackend) Mount(name string, rev int) error {
	if err := f.call("Mount %s %d", name, rev); err != nil {
		return err
	}
	if _, ok := f.packages[key(name, rev)]; !ok {
		return fmt.Errorf("no package of %s revision %d", name, rev)
	}
	f.mounted[key(name, rev)] = true
	return nil
}

func (f *fakeBackend) Unmount(name string, rev int) error {
	if err := f.call("Unmount %s %d", name, rev); err != nil {
		return err
	}
	delete(f.mounted, key(name, rev))
	return nil
}

func (f *fakeBackend) ReadManifest(name string, rev int) (*manifest.Manifest, error) {
	if err := f.call("ReadManifest %s %d", name, rev); err != nil {
		return nil, err
	}
	if !f.mounted[key(name, rev)] {
		return nil, fmt.Errorf("%s revision %d is not mounted", name, rev)
	}
	mf := *f.contents[key(name, rev)]
	return &mf, nil
}

func (f *fakeBackend) KeepManifest(rev int, mf *manifest.Manifest) error {
	if err := f.call("KeepManifest %s %d", mf.Name, rev); err != nil {
		return err
	}
	f.kept[key(mf.Name, rev)] = mf
	return nil
}

func (f *fakeBackend) KeptManifest(name string, rev int) (*manifest.Manifest, error) {
	// Reads are not recorded: only what changes the system is.
	mf, ok := f.kept[key(name, rev)]
	if !ok {
		return nil, fmt.Errorf("no kept manifest of %s revision %d: %w", name, rev, os.ErrNotExist)
	}
	return mf, nil
}

func (f *fakeBackend) GenerateProfiles(rev int, mf *manifest.Manifest, arch string, conns []policy.Connection) error {
	if err := f.call("GenerateProfiles %s %d %s", mf.Name, rev, arch); err != nil {
		return err
	}
	f.connections[key(mf.Name, rev)] = conns
	f.profiles[key(mf.Name, rev)] = true
	return nil
}

func (f *fakeBackend) RemoveProfiles(name string, rev int) error {
	if err := f.call("RemoveProfiles %s %d", name, rev); err != nil {
		return err
	}
	delete(f.profiles, key(name, rev))
	delete(f.apparmor, key(name, rev))
	delete(f.kept, key(name, rev))
	delete(f.gadgets, key(name, rev))
	return nil
}

func (f *fakeBackend) LoadAppArmor(name string, rev int, mf *manifest.Manifest) error {
	if err := f.call("LoadAppArmor %s %d", name, rev); err != nil {
		return err
	}
	if !f.profiles[key(name, rev)] {
		return fmt.Errorf("no profiles of %s revision %d", name, rev)
	}
	f.apparmor[key(name, rev)] = true
	return nil
}

func (f *fakeBackend) CreateData(name string, rev, from int, owner revisions.Owner) error {
	if err := f.call("CreateData %s %d from %d", name, rev, from); err != nil {
		return err
	}
	if _, ok := f.data[key(name, from)]; from != 0 && !ok {
		return fmt.Errorf("no data of %s revision %d to copy", name, from)
	}
	f.data[key(name, rev)] = owner
	f.common[name] = true
	return nil
}

func (f *fakeBackend) RemoveData(name string, rev int) error {
	if err := f.call("RemoveData %s %d", name, rev); err != nil {
		return err
	}
	delete(f.data, key(name, rev))
	return nil
}

func (f *fakeBackend) RemoveCommonData(name string) error {
	if err := f.call("RemoveCommonData %s", name); err != nil {
		return err
	}
	delete(f.common, name)
	return nil
}

func (f *fakeBackend) SetCurrent(name string, rev int) error {
	if err := f.call("SetCurrent %s %d", name, rev); err != nil {
		return err
	}
	if !f.mounted[key(name, rev)] {
		return fmt.Errorf("%s revision %d is not mounted", name, rev)
	}
	f.current[name] = rev
	return nil
}

func (f *fakeBackend) ClearCurrent(name string) error {
	if err := f.call("ClearCurrent %s", name); err != nil {
		return err
	}
	delete(f.current, name)
	return nil
}

func (f *fakeBackend) StopSandboxes(name string, rev int) error {
	return f.call("StopSandboxes %s %d", name, rev)
}

func (f *fakeBackend) DeleteCgroup(name, cmd string) error {
	return f.call("DeleteCgroup %s %s", name, cmd)
}

func (f *fakeBackend) RetireSandboxes() { f.call("RetireSandboxes") }

func (f *fakeBackend) Discard(name string, rev int) error {
	if err := f.call("Discard %s %d", name, rev); err != nil {
		return err
	}
	k := key(name, rev)
	delete(f.mounted, k)
	delete(f.packages, k)
	delete(f.contents, k)
	delete(f.assertions, k)
	delete(f.data, k)
	return nil
}

func (f *fakeBackend) RemoveApp(name string) error {
	if err := f.call("RemoveApp %s", name); err != nil {
		return err
	}
	delete(f.common, name)
	delete(f.current, name)
	return nil
}

func (f *fakeBackend) KeepGadget(name string, rev int) error {
	if err := f.call("KeepGadget %s %d", name, rev); err != nil {
		return err
	}
	f.gadgets[key(name, rev)] = f.gadgetContents[key(name, rev)]
	return nil
}

func (f *fakeBackend) KeptGadget(name string, rev int) (*gadget.Gadget, error) {
	g, ok := f.gadgets[key(name, rev)]
	if !ok {
		return nil, fmt.Errorf("no gadget kept of %s revision %d: %w", name, rev, os.ErrNotExist)
	}
	return g, nil
}

func (f *fakeBackend) Policies(name string, rev int, mf *manifest.Manifest) map[string]*profiles.Policy {
	f.call("Policies %s %d", name, rev)
	return map[string]*profiles.Policy{}
}

func (f *fakeBackend) ApplyPolicies(name string, rev int, mf *manifest.Manifest, old map[string]*profiles.Policy) ([]int, error) {
	if err := f.call("ApplyPolicies %s %d", name, rev); err != nil {
		return nil, err
	}
	return nil, nil
}
