package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"paddock.dev/paddock/internal/arch"
	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/pack"
)

// signReadManifest reads a package's manifest; tests may swap it.
var signReadManifest = pack.ReadManifest

const signUsage = `
Usage: paddock sign PACKAGE.pdk --key NAME --revision N [--delegation FILE]
                    [--arch ARCH] [-o FILE] [--json]

Sign writes PACKAGE.pdk.assert next to the package: an app-revision
assertion, signed by your key NAME, that states the package's name, version
and type (from its meta/app.yaml), its revision number N, its architecture,
and its size and sha256. A device installs the package only if both files
agree and the signature leads to a root key it trusts.

If NAME is not a root key itself, pass the delegation its root key holder
made for it ('paddock key delegate'): it is copied into the .assert file so
devices can follow the chain. Revisions count up from 1 for each name; a
device never installs a revision lower than the one it has unless asked to
revert.

Examples:
    paddock sign hello_1.0.pdk --key acme-ci --revision 7 --delegation ci.assert
    paddock sign hello_1.0.pdk --key acme-root --revision 1 --arch arm64 --json
`

// SignResult is what 'paddock sign --json' reports.
type SignResult struct {
	Path        string `json:"path"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	Revision    int    `json:"revision"`
	Arch        string `json:"arch"`
	Type        string `json:"type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	SignKey     string `json:"sign-key"`
	Delegations int    `json:"delegations"`
}

// Sign runs 'paddock sign PACKAGE.pdk --key NAME --revision N ...'.
func Sign(args []string, stdout, stderr io.Writer) error {
	fs := pcli.NewFlagSet("sign", signUsage, stdout)
	keyName := fs.String("key", "", "sign with key `NAME` from your store (required)")
	revision := fs.String("revision", "", "the revision number `N` of this package, 1 or more (required)")
	delegation := fs.String("delegation", "", "include the delegation of NAME in `FILE` (from 'paddock key delegate')")
	arch := fs.String("arch", arch.Native(), "the `ARCH`itecture the package runs on: amd64, arm64, armhf...")
	out := fs.String("o", "", "write the assertions to `FILE` (default PACKAGE.pdk.assert)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := keyParseArgs(fs, args, 1, "sign takes one package file (try 'paddock sign hello_1.0.pdk --key NAME --revision 1')")
	if err != nil {
		return keyHelpOK(err)
	}
	if *keyName == "" {
		return pcli.UsageError("sign needs --key NAME (see 'paddock key list')")
	}
	rev, err := strconv.Atoi(*revision)
	if err != nil || rev <= 0 {
		return pcli.UsageError("sign needs --revision N with N a positive integer, got %q", *revision)
	}
	pkg := pos[0]
	if *out == "" {
		*out = pkg + ".assert"
	}
	res, err := signPackage(pkg, *keyName, rev, *arch, *delegation, *out)
	if err != nil {
		return err
	}
	if *asJSON {
		return pcli.WriteJSON(stdout, res)
	}
	_, err = fmt.Fprintf(stdout, "signed %s %s revision %d (%s, %s) with key %s (%s)\nwrote %s\n",
		res.Name, res.Version, res.Revision, res.Type, res.Arch, *keyName, keys.Short(res.SignKey), res.Path)
	if err == nil && res.Delegations == 0 {
		fmt.Fprintf(stderr, "note: without --delegation, devices accept this package only if they trust key %s itself\n", *keyName)
	}
	return err
}

// signPackage signs the package pkg and writes the assertions to out.
func signPackage(pkg, keyName string, rev int, arch, delegation, out string) (*SignResult, error) {
	store, err := keys.DefaultStore()
	if err != nil {
		return nil, err
	}
	key, err := store.Private(keyName)
	if err != nil {
		return nil, err
	}
	m, err := signReadManifest(pkg)
	if err != nil {
		return nil, err
	}
	size, digest, err := hashFile(pkg)
	if err != nil {
		return nil, err
	}
	r := &assert.AppRevision{
		Name: m.Name, Version: m.Version, Revision: rev, Arch: arch, Type: m.Type,
		Size: size, SHA256: digest, Timestamp: assertNow(),
	}
	var chain []*assert.Assertion
	if delegation != "" {
		if chain, err = readDelegation(delegation, key.Public(), keyName, m.Name); err != nil {
			return nil, err
		}
	}
	a, err := assert.SignAppRevision(r, key)
	if err != nil {
		return nil, fmt.Errorf("cannot sign %s: %w", pkg, err)
	}
	if err := keyWriteOutput(out, assert.EncodeBundle(append(chain, a))); err != nil {
		return nil, err
	}
	return &SignResult{
		Path: out, Name: r.Name, Version: r.Version, Revision: rev, Arch: arch, Type: r.Type,
		Size: size, SHA256: digest, SignKey: a.SignKey(), Delegations: len(chain),
	}, nil
}

// readDelegation reads the account-keys in file and checks that one lets
// key publish name, so a wrong file is caught here rather than on a device.
func readDelegation(file string, key *keys.PublicKey, keyName, name string) ([]*assert.Assertion, error) {
	data, err := keyReadInput(file)
	if err != nil {
		return nil, err
	}
	as, err := assert.DecodeBundle(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read delegation %s: %w", file, err)
	}
	var covers []string
	for _, a := range as {
		if a.Type() != assert.AccountKeyType {
			return nil, fmt.Errorf("cannot use delegation %s: it holds an assertion of type %s, want only account-key assertions (from 'paddock key delegate')", file, a.Type())
		}
		ak, err := assert.ParseAccountKey(a)
		if err != nil || ak.Fingerprint != key.Fingerprint() || ak.Role != assert.RolePublisher {
			continue
		}
		if ak.Allows(name) {
			return as, nil
		}
		covers = append(covers, ak.Names...)
	}
	if len(covers) > 0 {
		return nil, fmt.Errorf("cannot use delegation %s: key %s is not delegated to publish %q (it may publish: %s)",
			file, keyName, name, strings.Join(covers, ", "))
	}
	return nil, fmt.Errorf("cannot use delegation %s: it does not delegate key %s (%s) as publisher (ask the root key holder for 'paddock key delegate --to %s')",
		file, keyName, keys.Short(key.Fingerprint()), keyName)
}

// hashFile returns the size and hex sha256 of the file at path.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
