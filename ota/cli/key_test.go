package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

var keyTestNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// keySetup points the key store and the root directory at temporary
// directories and fixes the clock.
func keySetup(t *testing.T) string {
	t.Helper()
	dirstest.SetRoot(t)
	store := filepath.Join(t.TempDir(), "keys")
	t.Setenv("PADDOCK_KEYS", store)
	testutil.Replace(t, &assertNow, func() time.Time { return keyTestNow })
	return store
}

// keyRun runs the key command and returns its standard output.
func keyRun(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Key(args, &stdout, &stderr); err != nil {
		t.Fatalf("paddock key %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String()
}

func TestKeyCreateListExportTrust(t *testing.T) {
	store := keySetup(t)
	out := keyRun(t, "create", "root")
	if !strings.Contains(out, "created key root") {
		t.Errorf("got output %q, want it to say the key was created", out)
	}
	keyRun(t, "create", "pub", "--json")

	var infos []keys.KeyInfo
	if err := json.Unmarshal([]byte(keyRun(t, "list", "--json")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "pub" || infos[1].Name != "root" {
		t.Fatalf("got keys %+v, want pub and root", infos)
	}
	if out := keyRun(t, "list"); !strings.Contains(out, "root  "+infos[1].Fingerprint) {
		t.Errorf("got list\n%s\nwant a line for root", out)
	}

	armored := keyRun(t, "export", "root")
	file := filepath.Join(t.TempDir(), "root.asc")
	if err := os.WriteFile(file, []byte(armored), 0o644); err != nil {
		t.Fatal(err)
	}
	var res KeyResult
	if err := json.Unmarshal([]byte(keyRun(t, "trust", file, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Fingerprint != infos[1].Fingerprint || res.Name != "root" || res.Path != dirs.TrustedDir {
		t.Errorf("got %+v, want root %s in %s", res, infos[1].Fingerprint, dirs.TrustedDir)
	}
	trusted, err := keys.LoadTrusted()
	if err != nil || len(trusted) != 1 || trusted[0].Fingerprint() != infos[1].Fingerprint {
		t.Errorf("got trusted keys %v, %v, want root", trusted, err)
	}
	if _, err := os.Stat(filepath.Join(store, "root.key")); err != nil {
		t.Errorf("got %v, want root.key in the store", err)
	}
}

func TestKeyTrustStdin(t *testing.T) {
	keySetup(t)
	keyRun(t, "create", "root")
	armored := keyRun(t, "export", "root")
	testutil.Replace[io.Reader](t, &keyStdin, strings.NewReader(armored))
	if out := keyRun(t, "trust", "-"); !strings.Contains(out, "trusted key root") {
		t.Errorf("got %q, want it to say root is trusted", out)
	}
}

func TestKeyListEmpty(t *testing.T) {
	keySetup(t)
	if got, want := keyRun(t, "list", "--json"), "[]\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if out := keyRun(t, "list"); !strings.Contains(out, "paddock key create NAME") {
		t.Errorf("got %q, want a hint to create a key", out)
	}
}

func TestKeyDelegate(t *testing.T) {
	keySetup(t)
	keyRun(t, "create", "root")
	keyRun(t, "create", "pub")
	pubFile := filepath.Join(t.TempDir(), "pub.asc")
	if err := os.WriteFile(pubFile, []byte(keyRun(t, "export", "pub")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"pub", pubFile} {
		t.Run(filepath.Base(to), func(t *testing.T) {
			out := keyRun(t, "delegate", "--key", "root", "--to", to, "--names", "hello,acme-*", "--until", "2027-01-01", "--takeover")
			a, err := assert.Decode([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			ak, err := assert.ParseAccountKey(a)
			if err != nil {
				t.Fatal(err)
			}
			want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			if ak.Account != "pub" || ak.Role != "publisher" || !ak.Takeover || !ak.Until.Equal(want) || !ak.Since.Equal(keyTestNow) {
				t.Errorf("got %+v, want pub as publisher with takeover from %v until %v", ak, keyTestNow, want)
			}
			if got, want := strings.Join(ak.Names, ","), "hello,acme-*"; got != want {
				t.Errorf("got names %q, want %q", got, want)
			}
		})
	}
	// --grant-root and --grant-classic put their grants in the delegation.
	for _, g := range []struct{ flag, grant string }{{"--grant-root", assert.GrantRoot}, {"--grant-classic", assert.GrantClassic}} {
		for _, grant := range []bool{false, true} {
			args := []string{"delegate", "--key", "root", "--to", "pub", "--names", "hello"}
			if grant {
				args = append(args, g.flag)
			}
			a, err := assert.Decode([]byte(keyRun(t, args...)))
			if err != nil {
				t.Fatal(err)
			}
			ak, err := assert.ParseAccountKey(a)
			if err != nil {
				t.Fatal(err)
			}
			if got := ak.Granted(g.grant); got != grant || len(ak.Grants) > 1 {
				t.Errorf("%s %v: got the grant %v (grants %q), want %v", g.flag, grant, got, ak.Grants, grant)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "d.assert")
	var res DelegateResult
	if err := json.Unmarshal([]byte(keyRun(t, "delegate", "--key", "root", "--to", "pub", "--names", "x", "--role", "operator", "-o", file, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if res.Role != "operator" || res.Path != file || res.Assertion != string(data) || !res.Until.IsZero() {
		t.Errorf("got %+v, want an operator delegation without end written to %s", res, file)
	}
}

func TestKeyErrors(t *testing.T) {
	keySetup(t)
	keyRun(t, "create", "root")
	tests := []struct {
		args  []string
		usage bool   // want an ErrUsage
		want  string // in the message
	}{
		{nil, true, "key needs a command"},
		{[]string{"frob"}, true, `unknown key command "frob"`},
		{[]string{"create"}, true, "key create takes one key name"},
		{[]string{"create", "a", "b"}, true, "got 2 arguments"},
		{[]string{"create", "--bogus", "a"}, true, "flag provided but not defined"},
		{[]string{"create", "root"}, false, "key already exists"},
		{[]string{"create", "Root"}, false, "invalid key name"},
		{[]string{"export", "nope"}, false, "key nope not found (create it with 'paddock key create nope')"},
		{[]string{"trust", "/nonexistent.asc"}, false, "cannot read /nonexistent.asc"},
		{[]string{"delegate", "--to", "root", "--names", "a"}, true, "key delegate needs --key"},
		{[]string{"delegate", "--key", "root", "--names", "a"}, true, "key delegate needs --to"},
		{[]string{"delegate", "--key", "root", "--to", "root"}, true, "key delegate needs --names"},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a", "--role", "admin"}, true, "--role admin is not publisher or operator"},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a", "--until", "soon"}, true, `cannot parse date "soon"`},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a", "--role", "operator", "--grant-root"}, true, "--grant-root is for a publisher's key"},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a", "--role", "operator", "--grant-classic"}, true, "--grant-classic is for a publisher's key"},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a", "--until", "2020-01-01"}, true, "is not in the future"},
		{[]string{"delegate", "--key", "root", "--to", "ghost", "--names", "a"}, false, "no such key"},
		{[]string{"delegate", "--key", "ghost", "--to", "root", "--names", "a"}, false, "key ghost not found"},
		{[]string{"delegate", "--key", "root", "--to", "root", "--names", "a["}, false, `names glob "a["`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Key(tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if got := errors.Is(err, pcli.ErrUsage); got != tt.usage {
				t.Errorf("got usage error %v, want %v (%v)", got, tt.usage, err)
			}
		})
	}
}

func TestKeyHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"create", "--help"}, {"list", "-h"}, {"export", "--help"}, {"trust", "--help"}, {"delegate", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := Key(args, &stdout, &stderr); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if !strings.HasPrefix(stdout.String(), "Usage: paddock key") {
				t.Errorf("got help\n%s\nwant it to start with the usage line", stdout.String())
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2027-01-02", time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2027-01-02T03:04:05Z", time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"2027-01-02T03:04:05.9+01:00", time.Date(2027, 1, 2, 2, 4, 5, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseDate(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseDate(%q): got %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}
