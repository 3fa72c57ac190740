package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// assertNow is the clock of delegations and signatures; tests swap it.
var assertNow = time.Now

// keyStdin is what "-" reads; tests swap it.
var keyStdin io.Reader = os.Stdin

const keyUsage = `
Usage: paddock key COMMAND [ARGS]

Key manages the Ed25519 OpenPGP keys that sign packages, and the root keys
a device trusts. Private keys live in your key store ($PADDOCK_KEYS, or
~/.config/paddock/keys); only their public halves ever leave it.

A device installs a package only when its signature leads to a root key
the device trusts: either the root key signed the package itself, or the
root key delegated the signing key ('paddock key delegate') for the
package's name, and the delegation ships with the package
('paddock sign --delegation').

Commands:
    create NAME     create a signing key
    list            list your keys and their fingerprints
    export NAME     print the public half of a key, to give to others
    trust FILE      trust a root key on this device (FILE, or - for stdin)
    delegate        let another key publish some package names

Examples:
    paddock key create acme-root
    paddock key create acme-ci
    paddock key delegate --key acme-root --to acme-ci --names 'acme-*' -o ci.assert
    paddock key export acme-root > acme-root.asc
    sudo paddock key trust acme-root.asc

Run 'paddock key COMMAND --help' for the options of a command.
`

// Key runs 'paddock key COMMAND [ARGS]'.
func Key(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return pcli.UsageError("key needs a command: create, list, export, trust or delegate")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, strings.TrimSpace(keyUsage))
		return nil
	case "create":
		return keyCreate(args[1:], stdout)
	case "list":
		return keyList(args[1:], stdout)
	case "export":
		return keyExport(args[1:], stdout)
	case "trust":
		return keyTrust(args[1:], stdout)
	case "delegate":
		return keyDelegate(args[1:], stdout)
	}
	return pcli.UsageError("unknown key command %q (want create, list, export, trust or delegate)", args[0])
}

// keyParseArgs parses args into fs and checks the number of positional
// arguments; it returns flag.ErrHelp after printing help.
func keyParseArgs(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	pos, err := pcli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != want {
		return nil, pcli.UsageError("%s, got %d arguments", what, len(pos))
	}
	return pos, nil
}

// keyHelpOK turns flag.ErrHelp, which means help was printed, into success.
func keyHelpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// KeyResult is what 'paddock key create', 'export' and 'trust' report.
type KeyResult struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	// Path is the file the key was written to, if any.
	Path string `json:"path,omitempty"`
	// Armored is the public key, for 'export'.
	Armored string `json:"armored,omitempty"`
}

const keyCreateUsage = `
Usage: paddock key create NAME [--json]

Create makes a new Ed25519 signing key called NAME (lowercase letters,
digits and dashes) in your key store, readable only by you. The key is not
protected by a passphrase: keep the store on an encrypted disk, and keep
root keys offline.

Example:
    paddock key create acme-root
`

func keyCreate(args []string, stdout io.Writer) error {
	fs := pcli.NewFlagSet("key create", keyCreateUsage, stdout)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := keyParseArgs(fs, args, 1, "key create takes one key name (try 'paddock key create acme-root')")
	if err != nil {
		return keyHelpOK(err)
	}
	store, err := keys.DefaultStore()
	if err != nil {
		return err
	}
	k, err := store.Create(pos[0])
	if err != nil {
		return err
	}
	res := KeyResult{Name: pos[0], Fingerprint: k.Public().Fingerprint(), Path: store.Dir}
	if *asJSON {
		return pcli.WriteJSON(stdout, res)
	}
	_, err = fmt.Fprintf(stdout, "created key %s\n  fingerprint: %s\n  store:       %s\nGive others its public half with 'paddock key export %s'.\n",
		res.Name, res.Fingerprint, res.Path, res.Name)
	return err
}

const keyListUsage = `
Usage: paddock key list [--json]

List prints the name and fingerprint of every key in your key store.
`

func keyList(args []string, stdout io.Writer) error {
	fs := pcli.NewFlagSet("key list", keyListUsage, stdout)
	asJSON := fs.Bool("json", false, "print the keys as JSON")
	if _, err := keyParseArgs(fs, args, 0, "key list takes no arguments"); err != nil {
		return keyHelpOK(err)
	}
	store, err := keys.DefaultStore()
	if err != nil {
		return err
	}
	infos, err := store.List()
	if err != nil {
		return err
	}
	if *asJSON {
		if infos == nil {
			infos = []keys.KeyInfo{}
		}
		return pcli.WriteJSON(stdout, infos)
	}
	if len(infos) == 0 {
		_, err := fmt.Fprintf(stdout, "no keys in %s (create one with 'paddock key create NAME')\n", store.Dir)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFINGERPRINT")
	for _, k := range infos {
		fmt.Fprintf(tw, "%s\t%s\n", k.Name, k.Fingerprint)
	}
	return tw.Flush()
}

const keyExportUsage = `
Usage: paddock key export NAME [--json]

Export prints the armored public half of key NAME. Give it to whoever
needs to check your signatures: a device's root key is trusted with
'paddock key trust', a publisher's key is delegated with
'paddock key delegate --to FILE'.

Example:
    paddock key export acme-root > acme-root.asc
`

func keyExport(args []string, stdout io.Writer) error {
	fs := pcli.NewFlagSet("key export", keyExportUsage, stdout)
	asJSON := fs.Bool("json", false, "print the name, fingerprint and key as JSON")
	pos, err := keyParseArgs(fs, args, 1, "key export takes one key name")
	if err != nil {
		return keyHelpOK(err)
	}
	store, err := keys.DefaultStore()
	if err != nil {
		return err
	}
	k, err := store.Private(pos[0])
	if err != nil {
		return err
	}
	armored, err := k.Public().Armored()
	if err != nil {
		return err
	}
	if *asJSON {
		return pcli.WriteJSON(stdout, KeyResult{Name: pos[0], Fingerprint: k.Public().Fingerprint(), Armored: string(armored)})
	}
	_, err = stdout.Write(armored)
	return err
}

const keyTrustUsage = `
Usage: paddock key trust FILE [--json]

Trust makes this device (or the root directory in $PADDOCK_ROOT) trust the
root key in FILE, an armored public key from 'paddock key export'; FILE -
reads it from standard input. The key is stored as
/etc/paddock/trusted/FINGERPRINT.asc. Packages signed by the key, or by a
key it delegates, can then be installed. Compare the fingerprint it prints
with the one the key's owner gave you.

Example:
    paddock key export acme-root | sudo paddock key trust -
`

func keyTrust(args []string, stdout io.Writer) error {
	fs := pcli.NewFlagSet("key trust", keyTrustUsage, stdout)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := keyParseArgs(fs, args, 1, "key trust takes one key file, or - for standard input")
	if err != nil {
		return keyHelpOK(err)
	}
	data, err := keyReadInput(pos[0])
	if err != nil {
		return err
	}
	k, err := keys.Trust(data)
	if err != nil {
		return err
	}
	res := KeyResult{Name: k.Name(), Fingerprint: k.Fingerprint(), Path: dirs.TrustedDir}
	if *asJSON {
		return pcli.WriteJSON(stdout, res)
	}
	_, err = fmt.Fprintf(stdout, "trusted key %s\n  fingerprint: %s\n  in:          %s\n", res.Name, res.Fingerprint, res.Path)
	return err
}

// keyReadInput reads a small file, or standard input for "-".
func keyReadInput(name string) ([]byte, error) {
	r := keyStdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, assert.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	if len(data) > assert.MaxBundleSize {
		return nil, fmt.Errorf("cannot read %s: larger than %d bytes", name, assert.MaxBundleSize)
	}
	return data, nil
}

// keyWriteOutput writes data to path atomically.
func keyWriteOutput(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o644)
}

const keyDelegateUsage = `
Usage: paddock key delegate --key ROOT --to KEY --names GLOBS [--role ROLE]
                            [--until DATE] [--takeover] [--grant-root]
                            [--grant-classic] [-o FILE] [--json]

Delegate lets KEY sign for ROOT: it writes an account-key assertion, signed
by your root key ROOT, that lets KEY publish the packages whose names match
GLOBS (comma-separated, as in 'hello,acme-*'), from now until DATE. Give the
result to KEY's owner, who passes it to 'paddock sign --delegation'; devices
that trust ROOT then accept their packages.

KEY is a key in your store, or a file holding a public key from
'paddock key export'. A device refuses an update signed by another key
than the installed revision's, unless --takeover allows KEY to take over
the names.

Apps run as their own unprivileged user on the device. --grant-root lets
KEY's apps that ask for it ('user: root' in their app.yaml) run as root
instead; a device refuses such an app without it. Grant it only to
publishers you trust with the whole device. --grant-classic lets KEY's apps
that ask for it ('confinement: classic') run without a sandbox; devices
refuse them without it (and this version of the agent refuses them even
with it, as it cannot run them yet).

Example:
    paddock key delegate --key acme-root --to ci.asc --names 'acme-*' \
        --until 2027-01-01 -o ci.assert
`

// DelegateResult is what 'paddock key delegate --json' reports.
type DelegateResult struct {
	Account     string    `json:"account"`
	Fingerprint string    `json:"fingerprint"`
	Role        string    `json:"role"`
	Names       []string  `json:"names"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until,omitzero"`
	Takeover    bool      `json:"takeover"`
	Grants      []string  `json:"grants,omitempty"`
	SignKey     string    `json:"sign-key"`
	Path        string    `json:"path,omitempty"`
	Assertion   string    `json:"assertion"`
}

func keyDelegate(args []string, stdout io.Writer) error {
	fs := pcli.NewFlagSet("key delegate", keyDelegateUsage, stdout)
	rootName := fs.String("key", "", "sign with root key `ROOT` from your store (required)")
	to := fs.String("to", "", "delegate `KEY`: a key name in your store or a public key file (required)")
	role := fs.String("role", assert.RolePublisher, "the `ROLE` delegated: publisher or operator")
	names := fs.String("names", "", "comma-separated `GLOBS` of the package names KEY may sign (required)")
	until := fs.String("until", "", "end the delegation on `DATE` (YYYY-MM-DD, or RFC 3339); default never")
	takeover := fs.Bool("takeover", false, "let KEY publish names that another key published before")
	grantRoot := fs.Bool("grant-root", false, "let KEY's apps run as root when their app.yaml says 'user: root'")
	grantClassic := fs.Bool("grant-classic", false, "let KEY's apps run unconfined when their app.yaml says 'confinement: classic'")
	account := fs.String("account", "", "the `NAME` of KEY's holder (default: the name in KEY)")
	out := fs.String("o", "", "write the assertion to `FILE` instead of standard output")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := keyParseArgs(fs, args, 0, "key delegate takes no arguments besides its options"); err != nil {
		return keyHelpOK(err)
	}
	for _, req := range []struct{ flag, value string }{{"--key", *rootName}, {"--to", *to}, {"--names", *names}} {
		if req.value == "" {
			return pcli.UsageError("key delegate needs %s", req.flag)
		}
	}
	if *role != assert.RolePublisher && *role != assert.RoleOperator {
		return pcli.UsageError("--role %s is not %s or %s", *role, assert.RolePublisher, assert.RoleOperator)
	}
	if *grantRoot && *role != assert.RolePublisher {
		return pcli.UsageError("--grant-root is for a publisher's key, not for the %s role", *role)
	}
	if *grantClassic && *role != assert.RolePublisher {
		return pcli.UsageError("--grant-classic is for a publisher's key, not for the %s role", *role)
	}
	store, err := keys.DefaultStore()
	if err != nil {
		return err
	}
	root, err := store.Private(*rootName)
	if err != nil {
		return err
	}
	delegate, err := delegateKey(store, *to)
	if err != nil {
		return err
	}
	ak := &assert.AccountKey{
		Account:  *account,
		Role:     *role,
		Names:    strings.Split(*names, ","),
		Since:    assertNow().UTC().Truncate(time.Second),
		Takeover: *takeover,
		Key:      delegate,
	}
	if *grantRoot {
		ak.Grants = append(ak.Grants, assert.GrantRoot)
	}
	if *grantClassic {
		ak.Grants = append(ak.Grants, assert.GrantClassic)
	}
	if ak.Account == "" {
		ak.Account = delegate.Name()
	}
	if *until != "" {
		if ak.Until, err = parseDate(*until); err != nil {
			return err
		}
		if !ak.Until.After(ak.Since) {
			return pcli.UsageError("--until %s is not in the future", *until)
		}
	}
	a, err := assert.SignAccountKey(ak, root)
	if err != nil {
		return fmt.Errorf("cannot delegate key %s: %w", *to, err)
	}
	if *out != "" {
		if err := keyWriteOutput(*out, a.Encode()); err != nil {
			return err
		}
	}
	return delegateReport(stdout, a, ak, *out, *asJSON)
}

// delegateKey finds the public key to delegate: a key in store, or a file.
func delegateKey(store *keys.Store, to string) (*keys.PublicKey, error) {
	if keys.ValidateName(to) == nil {
		k, err := store.Private(to)
		if err == nil {
			return k.Public(), nil
		}
		if !errors.Is(err, keys.ErrNotFound) {
			return nil, err
		}
		if _, statErr := os.Stat(to); statErr != nil {
			return nil, fmt.Errorf("cannot delegate %s: no such key in %s and no such file (give a name from 'paddock key list' or a public key file)", to, store.Dir)
		}
	}
	data, err := keyReadInput(to)
	if err != nil {
		return nil, err
	}
	k, err := keys.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("cannot delegate %s: %w", to, err)
	}
	return k, nil
}

func delegateReport(stdout io.Writer, a *assert.Assertion, ak *assert.AccountKey, out string, asJSON bool) error {
	if asJSON {
		return pcli.WriteJSON(stdout, DelegateResult{
			Account: ak.Account, Fingerprint: ak.Key.Fingerprint(), Role: ak.Role, Names: ak.Names,
			Since: ak.Since, Until: ak.Until, Takeover: ak.Takeover, Grants: ak.Grants, SignKey: a.SignKey(),
			Path: out, Assertion: string(a.Encode()),
		})
	}
	if out == "" {
		_, err := stdout.Write(a.Encode())
		return err
	}
	if ak.Role == assert.RoleOperator {
		_, err := fmt.Fprintf(stdout, "delegated key %s (%s) to command %s\nwrote %s (pass it to 'paddock fleet send --delegation %s')\n",
			ak.Account, keys.Short(ak.Key.Fingerprint()), strings.Join(ak.Names, ", "), out, out)
		return err
	}
	root := ""
	if ak.Granted(assert.GrantRoot) {
		root = ", with apps that may run as root"
	}
	if ak.Granted(assert.GrantClassic) {
		root += ", with apps that may run unconfined (classic)"
	}
	_, err := fmt.Fprintf(stdout, "delegated key %s (%s) to publish %s%s\nwrote %s (pass it to 'paddock sign --delegation %s')\n",
		ak.Account, keys.Short(ak.Key.Fingerprint()), strings.Join(ak.Names, ", "), root, out, out)
	return err
}

// parseDate parses a YYYY-MM-DD date (midnight UTC) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, pcli.UsageError("cannot parse date %q (want YYYY-MM-DD or 2006-01-02T15:04:05Z)", s)
	}
	return t.UTC().Truncate(time.Second), nil
}
