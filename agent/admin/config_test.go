package admin

import (
	"testing"

	"paddock.dev/paddock/agent/appmgr"
)

// FuzzConfigValues checks that any KEY=VALUE arguments are read without
// a panic, and that only valid keys are accepted.
func FuzzConfigValues(f *testing.F) {
	f.Add("port=8080", "name=web")
	f.Add("list=[1,2]", "obj={\"a\":1}")
	f.Add("Port=1", "=x")
	f.Add("a.b=1", "noequals")
	f.Fuzz(func(t *testing.T, a, b string) {
		values, err := parseValues([]string{a, b})
		if err != nil {
			return
		}
		for k := range values {
			if appmgr.CheckConfigKey(k) != nil {
				t.Fatalf("accepted the key %q", k)
			}
		}
	})
}
