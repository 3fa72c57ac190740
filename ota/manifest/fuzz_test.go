package manifest

import (
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzParse checks that Parse never panics, and that what it accepts is
// consistent: required fields set, commands inside the package.
func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(checkYAML))
	f.Add([]byte(plugsYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "f")
		if err != nil {
			if m != nil {
				t.Fatalf("got a manifest and the error %v", err)
			}
			return
		}
		if m.Name == "" || m.Version == "" || m.Type == "" {
			t.Fatalf("accepted a manifest without name, version or type: %+v", m)
		}
		for name, a := range m.Apps {
			if err := checkCommand(a.Command); err != nil {
				t.Fatalf("accepted app %s with %v", name, err)
			}
		}
		for name, a := range m.Apps {
			if h := a.Health; h != nil {
				kinds := 0
				for _, set := range []bool{h.Command != "", h.HTTP != "", h.TCP != 0} {
					if set {
						kinds++
					}
				}
				if kinds != 1 || h.Interval < MinHealthInterval || h.Timeout <= 0 || h.Timeout > h.Interval || h.Retries < 1 {
					t.Fatalf("accepted app %s with the health check %+v", name, *h)
				}
				if port, path := h.HTTPTarget(); h.HTTP != "" && (port < 1 || port > 65535 || path[0] != '/') {
					t.Fatalf("accepted app %s with the http probe %q", name, h.HTTP)
				}
			}
		}
		for _, pl := range m.AllPlugs() {
			if pl.Interface == "" || pl.Target != "" && !filepath.IsLocal(pl.Target) {
				t.Fatalf("accepted plug %+v", pl)
			}
		}
		for name, s := range m.Slots {
			if s.Interface == "" || !filepath.IsLocal(s.Path) {
				t.Fatalf("accepted slot %s %+v", name, s)
			}
		}
		for name, h := range m.Hooks {
			if err := checkCommand(h.Command); err != nil {
				t.Fatalf("accepted hook %s with %v", name, err)
			}
		}
		_ = m.CheckFiles(fstest.MapFS{})
	})
}
