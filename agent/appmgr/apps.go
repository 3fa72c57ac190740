// Package appmgr is the agent's app manager: it turns install, refresh,
// revert and remove requests into changes of tasks, and its task handlers
// do the work through a Backend (the system: mounts, profiles, sandboxes,
// cgroups, data), which tests replace with a fake.
package appmgr

import (
	"slices"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
)

// Revision is one installed revision of an app, as recorded in the state.
type Revision struct {
	Revision  int       `json:"revision"`
	Version   string    `json:"version"`
	Type      string    `json:"type"`
	Arch      string    `json:"arch"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Publisher string    `json:"publisher"`
	SignKey   string    `json:"sign-key"`
	Installed time.Time `json:"installed"`
	// Grants are what the publisher's delegation grants (assert.GrantRoot).
	Grants []string `json:"grants,omitempty"`
}

// App is the recorded state of one installed app.
type App struct {
	Name string `json:"name"`
	// Current is the active revision; 0 once a remove has begun
	// discarding the app's revisions: the app is inactive, and only a
	// remove acts on it (a failed one leaves it so, a second one finishes).
	Current int `json:"current"`
	// Sequence holds the kept revisions, oldest first.
	Sequence []Revision `json:"sequence"`
	// OwnerKey is the fingerprint of the key that publishes the app (see
	// owner); Superseded lists the keys it took the app over from.
	OwnerKey   string   `json:"owner-key,omitempty"`
	Superseded []string `json:"superseded-keys,omitempty"`
}

// Revision returns the kept revision rev, or nil.
func (a *App) Revision(rev int) *Revision {
	for i := range a.Sequence {
		if a.Sequence[i].Revision == rev {
			return &a.Sequence[i]
		}
	}
	return nil
}

// removing reports whether a remove has begun discarding the app's
// revisions, and did not finish.
func (a *App) removing() bool { return a.Current == 0 }

// CurrentRevision returns the active revision's record.
func (a *App) CurrentRevision() *Revision { return a.Revision(a.Current) }

// Previous returns the newest kept revision older than the current one, or nil.
func (a *App) Previous() *Revision {
	var prev *Revision
	for i := range a.Sequence {
		r := &a.Sequence[i]
		if r.Revision < a.Current && (prev == nil || r.Revision > prev.Revision) {
			prev = r
		}
	}
	return prev
}

// add records r, keeping the sequence sorted by revision.
func (a *App) add(r Revision) {
	if a.Revision(r.Revision) != nil {
		return
	}
	a.Sequence = append(a.Sequence, r)
	slices.SortFunc(a.Sequence, func(x, y Revision) int { return x.Revision - y.Revision })
}

// info is what the API reports of the app.
func (a *App) info() apitypes.AppInfo {
	in := apitypes.AppInfo{Name: a.Name, Revision: a.Current, Revisions: []apitypes.Revision{}}
	for _, r := range a.Sequence {
		in.Revisions = append(in.Revisions, apitypes.Revision(r))
	}
	if r := a.CurrentRevision(); r != nil {
		in.Version, in.Type, in.Arch, in.Publisher = r.Version, r.Type, r.Arch, r.Publisher
	}
	return in
}
