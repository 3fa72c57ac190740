package interfaces

import (
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestCatalog checks what every interface of the catalog must hold: a
// plug name app.yaml accepts, a summary, device entries the device cgroup
// takes, absolute clean mounts and valid denial patterns.
func TestCatalog(t *testing.T) {
	plugRe := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	all := All()
	if len(all) == 0 {
		t.Fatal("the catalog is empty")
	}
	for _, i := range all {
		if !plugRe.MatchString(i.Name) || i.Summary == "" {
			t.Errorf("%q: not a plug name, or no summary", i.Name)
		}
		if got, ok := Lookup(i.Name); !ok || got != i {
			t.Errorf("Lookup(%q) did not find it", i.Name)
		}
		for _, m := range i.Mounts {
			for _, p := range []string{m.Source, m.Target} {
				if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
					t.Errorf("%s: mount %s on %s is not clean and absolute", i.Name, m.Source, m.Target)
				}
			}
		}
		for _, d := range i.Devices {
			if d.Type != "c" && d.Type != "b" || d.Access == "" || strings.Trim(d.Access, "rwm") != "" {
				t.Errorf("%s: device %+v is not a device cgroup entry", i.Name, d)
			}
		}
		for _, p := range i.Denials.Paths {
			if _, err := path.Match(strings.TrimSuffix(p, "/"), "/x"); err != nil || !path.IsAbs(p) {
				t.Errorf("%s: denial pattern %q: %v", i.Name, p, err)
			}
		}
		if len(i.Denials.Operations) > 0 && len(i.Denials.Families) == 0 {
			t.Errorf("%s: denial operations without families", i.Name)
		}
	}
	if _, ok := Lookup("no-such-interface"); ok {
		t.Error("an unknown interface was found")
	}
}
