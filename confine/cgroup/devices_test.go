package cgroup

import (
	"slices"
	"testing"
)

func TestDiffSets(t *testing.T) {
	def := toSet(DefaultDevices())
	noZero := toSet(slices.DeleteFunc(DefaultDevices(), func(r DeviceRule) bool { return r.Major == 1 && r.Minor == 5 }))
	fresh, err := parseDevicesList("a *:* rwm\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		cur, want devSet
		first     devWrite
		n         int
	}{
		{"fresh group: deny all first", fresh, def, devWrite{DeviceRule{'a', -1, -1, "rwm"}, false}, len(def) + 1},
		{"unchanged: nothing", def, def, devWrite{}, 0},
		{"disconnect: one deny", def, noZero, devWrite{DeviceRule{'c', 1, 5, "rwm"}, false}, 1},
		{"connect: one allow", noZero, def, devWrite{DeviceRule{'c', 1, 5, "rwm"}, true}, 1},
		{"narrow access", toSet([]DeviceRule{{'c', 1, 3, "rwm"}}), toSet([]DeviceRule{{'c', 1, 3, "r"}}), devWrite{DeviceRule{'c', 1, 3, "wm"}, false}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := diffSets(tc.cur, tc.want)
			if len(w) != tc.n {
				t.Fatalf("got %d writes %v, want %d", len(w), w, tc.n)
			}
			if tc.n > 0 && w[0] != tc.first {
				t.Errorf("got first write %v, want %v", w[0], tc.first)
			}
		})
	}
}

func TestParseDevicesList(t *testing.T) {
	got, err := parseDevicesList("c *:* m\nb *:* m\nc 1:3 rwm\nc 136:* rwm\n")
	if err != nil {
		t.Fatal(err)
	}
	want := toSet([]DeviceRule{{'c', -1, -1, "m"}, {'b', -1, -1, "m"}, {'c', 1, 3, "rwm"}, {'c', 136, -1, "rwm"}})
	if !got.equal(want) {
		t.Errorf("got %v, want %v", got.rules(), want.rules())
	}
	for _, bad := range []string{"x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c a:3 r"} {
		if _, err := parseDevicesList(bad); err == nil {
			t.Errorf("parseDevicesList(%q): got nil error, want one", bad)
		}
	}
}

func TestValidateRules(t *testing.T) {
	for _, r := range []DeviceRule{{'x', 1, 3, "r"}, {'c', -2, 3, "r"}, {'c', 1, 3, ""}, {'c', 1, 3, "rx"}, {'a', 1, 3, "rwm"}} {
		if err := validateRules([]DeviceRule{r}); err == nil {
			t.Errorf("validate %v: got nil error, want one", r)
		}
	}
	if err := validateRules(DefaultDevices()); err != nil {
		t.Errorf("validate DefaultDevices: %v", err)
	}
}

// FuzzParseDevicesList checks that what parses also round-trips.
func FuzzParseDevicesList(f *testing.F) {
	f.Add("a *:* rwm\n")
	f.Add("c *:* m\nb *:* m\nc 1:3 rwm\nc 136:* rwm\n")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := parseDevicesList(data)
		if err != nil {
			return
		}
		var text string
		for _, r := range s.rules() {
			text += r.String() + "\n"
		}
		again, err := parseDevicesList(text)
		if err != nil || !again.equal(s) {
			t.Errorf("round trip of %q: got %v, %v", text, again, err)
		}
	})
}
