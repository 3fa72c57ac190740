package appmgr

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/agent/state/statetest"
	"paddock.dev/paddock/internal/loopmount"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
	"paddock.dev/paddock/ota/keys"
)

// fixture is a temporary root with a trusted root key, two publisher keys
// delegated for hello, and an app manager over a fresh state.
type fixture struct {
	t        *testing.T
	st       *state.State
	runner   *state.Runner
	m        *Manager
	root     *keys.PrivateKey
	pub      *keys.PrivateKey
	pub2     *keys.PrivateKey
	delegPub []byte
	since    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, st: statetest.Open(t), root: asserttest.Key(t, "root"), pub: asserttest.Key(t, "pub"), pub2: asserttest.Key(t, "pub2")}
	f.since = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	asserttest.Trust(t, f.root)
	f.delegPub = f.delegation(f.pub, false)
	f.runner = state.NewRunner(f.st)
	f.m = New(manager.NewEnv(f.st, f.runner, slog.New(slog.DiscardHandler)))
	f.m.Arch = "amd64"
	return f
}

// delegation returns an account-key by the root that lets key publish hello.
func (f *fixture) delegation(key *keys.PrivateKey, takeover bool) []byte {
	f.t.Helper()
	return asserttest.Delegation(f.t, f.root, key, func(ak *assert.AccountKey) {
		ak.Names, ak.Since, ak.Until, ak.Takeover = []string{"hello", "other"}, f.since, time.Time{}, takeover
	})
}

// revision describes pkg as revision rev of app name, type app, for amd64.
func (f *fixture) revision(name string, rev int, pkg []byte) *assert.AppRevision {
	sum := sha256.Sum256(pkg)
	return &assert.AppRevision{
		Name: name, Version: "1.0", Revision: rev, Arch: "amd64", Type: "app",
		Size: int64(len(pkg)), SHA256: hex.EncodeToString(sum[:]), Timestamp: f.since,
	}
}

// bundle signs r with key and puts the delegation in front, as 'paddock sign' does.
func (f *fixture) bundle(key *keys.PrivateKey, deleg []byte, r *assert.AppRevision) []byte {
	f.t.Helper()
	return asserttest.Bundle(deleg, asserttest.Revision(f.t, key, r.Name, func(x *assert.AppRevision) { *x = *r }))
}

// pubBundle is the bundle of revision rev of app name for pkg, signed by pub.
func (f *fixture) pubBundle(name string, rev int, pkg []byte) []byte {
	return f.bundle(f.pub, f.delegPub, f.revision(name, rev, pkg))
}

// installed records app as the app manager does after an install.
func (f *fixture) installed(app *App) {
	f.st.Lock()
	defer f.st.Unlock()
	f.m.setApp(app.Name, app)
}

// app returns the recorded app called name, or nil.
func (f *fixture) app(name string) *App {
	f.st.Lock()
	defer f.st.Unlock()
	return f.m.apps()[name]
}

// ensure runs every task that can run.
func (f *fixture) ensure() {
	f.t.Helper()
	if err := f.runner.Ensure(); err != nil {
		f.t.Fatal(err)
	}
}

// change returns the status of change id and its tasks' kind=status.
func (f *fixture) change(id string) (state.Status, []string, error) {
	f.st.Lock()
	defer f.st.Unlock()
	chg := f.st.Change(id)
	if chg == nil {
		f.t.Fatalf("no change %s", id)
	}
	var tasks []string
	for _, t := range chg.Tasks() {
		tasks = append(tasks, t.Kind()+"="+t.Status().String())
	}
	return chg.Status(), tasks, chg.Err()
}

func (f *fixture) changeCount() int {
	f.st.Lock()
	defer f.st.Unlock()
	return len(f.st.Changes())
}

// revisionOf returns a Revision record of rev signed by key.
func revisionOf(rev int, key *keys.PrivateKey) Revision {
	sum := sha256.Sum256([]byte{byte(rev)})
	return Revision{Revision: rev, Version: "1.0", Type: "app", Arch: "amd64", Size: 1, SHA256: hex.EncodeToString(sum[:]), Publisher: "pub", SignKey: key.Public().Fingerprint()}
}

// exists reports whether path exists (a dangling link counts).
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// mountsUnder returns the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ms, err := loopmount.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Dir, dir+"/") {
			out = append(out, m.Dir)
		}
	}
	return out
}
