package fleet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// unsafeIn returns the first rune of out that can drive a terminal (a
// control other than newline, a format character, a byte that is not
// UTF-8), or -1.
func unsafeIn(out string) rune {
	for i, r := range out {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD"):
			return rune(out[i])
		case r == '\n':
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			return r
		}
	}
	return -1
}

// checkSafe checks that out holds the hostile text, escaped as escaped
// says, and nothing raw that a terminal acts on.
func checkSafe(t *testing.T, what, out, escaped string) {
	t.Helper()
	if r := unsafeIn(out); r >= 0 {
		t.Errorf("%s: got %U raw in %q, want every device text escaped", what, r, out)
	}
	if !strings.Contains(out, escaped) {
		t.Errorf("%s: got %q, want the device's text shown escaped (%s)", what, out, escaped)
	}
}

// Regression: 'paddock fleet devices', send and rollout printed what a
// device reports as it came, so a forged retained state or event could
// recolour, retitle or clear the operator's terminal, overwrite lines and
// reverse text. Every device text is now escaped, in tables, lines and
// JSON alike.
func TestHostileDeviceText(t *testing.T) {
	e := newTestEnv(t)
	id := "evil1"
	e.fleet.add(id, fakeHostile, "lab")
	// A state under an id no device can have is listed, escaped, and left
	// out of the group's commands.
	e.fleet.add("dev\u202e1", fakeDone, "lab")

	for _, tt := range []struct{ flag, escaped string }{{"--wait=2s", `\x1b[31mred`}, {"--json", `\u001b[31mred`}} {
		var stdout, stderr bytes.Buffer
		if err := Devices([]string{"--broker", e.broker.URL(), tt.flag}, &stdout, &stderr); err != nil {
			t.Fatalf("devices: %v (%s)", err, stderr.String())
		}
		checkSafe(t, "fleet devices "+tt.flag, stdout.String(), tt.escaped)
		if !strings.Contains(stdout.String(), `dev\u202e1`) {
			t.Errorf("fleet devices %s: got %q, want the device id escaped", tt.flag, stdout.String())
		}
	}

	var stdout, stderr bytes.Buffer
	err := Send(append(e.opArgs(), "--device", id, "--timeout", "10s", "ping"), &stdout, &stderr)
	t.Logf("send: %v", err)
	checkSafe(t, "fleet send (stdout)", stdout.String(), `\x1b[31mred`)
	checkSafe(t, "fleet send (stderr)", stderr.String(), `\x1b[31mred`)

	stdout.Reset()
	stderr.Reset()
	err = rollout(context.Background(), e.rolloutArgs("--max-failures", "100%", "ping"), &stdout, &stderr)
	t.Logf("rollout: %v", err)
	checkSafe(t, "fleet rollout (stderr)", stderr.String(), `\x1b[31mred`)
	if !strings.Contains(stderr.String(), `leaving out 1 states of group lab under ids no device can have (forged?): dev\u202e1`) {
		t.Errorf("got stderr %q, want the forged id left out, escaped", stderr.String())
	}
	stdout.Reset()
	if err := rollout(context.Background(), []string{"status"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	checkSafe(t, "fleet rollout status", stdout.String(), `\x1b[31mred`)
}
