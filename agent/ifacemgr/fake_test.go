package ifacemgr

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/ota/manifest"
)

// fakeApps is the app manager as the interface manager sees it: apps
// with their current manifest, a gadget, and Regenerate recording the
// connections each app's policies were resolved with, through the
// function given to SetConnections, as appmgr does.
type fakeApps struct {
	mu        sync.Mutex
	apps      map[string]*manifest.Manifest
	revs      map[string]int
	prev      map[string]*manifest.Manifest
	gadget    *gadget.Gadget
	conns     func(string, *manifest.Manifest, *gadget.Gadget) []policy.Connection
	generated map[string][]string // app → "plug=slot" of its last policies
	regens    int
	// failRegen fails that many calls of Regenerate, from the next one.
	failRegen int
}

var _ Apps = (*fakeApps)(nil)

var errFake = errors.New("fake failure")

func newFakeApps() *fakeApps {
	return &fakeApps{apps: map[string]*manifest.Manifest{}, revs: map[string]int{}, prev: map[string]*manifest.Manifest{}, generated: map[string][]string{}}
}

// install records rev of app declaring plugs (each in one command), and
// resolves its policies as an install does.
func (f *fakeApps) install(app string, rev int, plugs ...string) {
	mf := &manifest.Manifest{Name: app, Version: "1", Type: manifest.TypeApp,
		Apps: map[string]*manifest.App{app: {Command: "bin/" + app, Plugs: plugs}}}
	f.mu.Lock()
	if old := f.apps[app]; old != nil {
		f.prev[app] = old
	}
	f.apps[app], f.revs[app] = mf, rev
	f.mu.Unlock()
	f.generate(app)
}

func (f *fakeApps) remove(app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.apps, app)
	delete(f.revs, app)
	delete(f.prev, app)
}

func (f *fakeApps) generate(app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.conns(app, f.apps[app], f.gadget) {
		out = append(out, c.Plug+"="+c.Slot)
	}
	sort.Strings(out)
	f.generated[app] = out
}

func (f *fakeApps) List() []apitypes.AppInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apitypes.AppInfo
	for name := range f.apps {
		out = append(out, apitypes.AppInfo{Name: name, Revision: f.revs[name], Type: manifest.TypeApp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeApps) CurrentManifest(name string) (*manifest.Manifest, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mf, ok := f.apps[name]
	if !ok {
		return nil, 0, fmt.Errorf("%s is not installed", name)
	}
	return mf, f.revs[name], nil
}

// PreviousManifest says there is no previous revision, unless prev has one.
func (f *fakeApps) PreviousManifest(name string) (*manifest.Manifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prev[name], nil
}

func (f *fakeApps) Gadget() (string, *gadget.Gadget, error) {
	if f.gadget == nil {
		return "", nil, nil
	}
	return "pc", f.gadget, nil
}

func (f *fakeApps) Regenerate(name string) ([]int, error) {
	f.mu.Lock()
	f.regens++
	fail := f.failRegen > 0
	if fail {
		f.failRegen--
	}
	f.mu.Unlock()
	if fail {
		return nil, errFake
	}
	f.generate(name)
	return nil, nil
}

func (f *fakeApps) SetConnections(fn func(string, *manifest.Manifest, *gadget.Gadget) []policy.Connection) {
	f.conns = fn
}

// installManifest records rev of the app that mf describes, and resolves
// its policies as an install does.
func (f *fakeApps) installManifest(mf *manifest.Manifest, rev int) {
	f.mu.Lock()
	f.apps[mf.Name], f.revs[mf.Name] = mf, rev
	f.mu.Unlock()
	f.generate(mf.Name)
}

// SetRecorder does nothing: the fake makes no changes, and Ensure records
// what its installs make.
func (f *fakeApps) SetRecorder(recorder) {}
