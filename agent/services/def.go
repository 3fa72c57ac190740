package services

import (
	"fmt"

	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/revisions"
)

// loadDef returns the declaration of service svc of revision rev of app.
func loadDef(app, svc string, rev int) (*manifest.App, error) {
	mf, err := revisions.LoadManifest(app, rev)
	if err != nil {
		return nil, err
	}
	def := mf.Apps[svc]
	if def == nil || def.Daemon == "" {
		return nil, fmt.Errorf("%s revision %d has no service %s", app, rev, svc)
	}
	return def, nil
}

var loadManifest = revisions.LoadManifest
