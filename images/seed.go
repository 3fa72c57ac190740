package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pack"
	"paddock.dev/paddock/ota/trust"
)

// SeedFile is where, in the data partition, the list of pre-installed
// apps is; the agent adopts them at first boot.
const SeedFile = "paddock/seed.json"

// Seed is the content of SeedFile.
type Seed struct {
	Apps []SeedApp `json:"apps"`
}

// SeedApp is one pre-installed app revision. Its package and assertions
// are at paddock/packages/NAME_REV.pdk and paddock/assertions/NAME_REV.assert
// (relative to the data partition; the agent sees them under
// /var/lib/paddock), its data directories at paddock/data/NAME/REV and
// paddock/data/NAME/common.
type SeedApp struct {
	Name      string `json:"name"`
	Revision  int    `json:"revision"`
	Version   string `json:"version"`
	Type      string `json:"type"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	SignKey   string `json:"sign-key"`
	Publisher string `json:"publisher"`
	Package   string `json:"package"`   // relative to /var/lib/paddock
	Assertion string `json:"assertion"` // relative to /var/lib/paddock
}

// seedApp is an app checked at build time, ready to be written.
type seedApp struct {
	SeedApp
	pdk    string
	bundle []byte
}

// timeNow is the time assertions are checked at; tests swap it.
var timeNow = time.Now

// checkApp verifies the package pdk with its assertions (pdk.assert)
// against the trusted keys, as the agent would before installing it: a
// trusted chain to the app-revision, the package's size and digest, the
// architecture, and a manifest that agrees with the assertion.
func checkApp(pdk, arch string, trusted []*keys.PublicKey) (*seedApp, error) {
	bundle, err := os.ReadFile(pdk + ".assert")
	if err != nil {
		return nil, fmt.Errorf("cannot seed %s: %w (sign it with 'paddock sign')", pdk, err)
	}
	rev, err := trust.CheckRevision(bundle, trusted, timeNow(), "")
	if err != nil {
		return nil, fmt.Errorf("cannot seed %s: %w", pdk, err)
	}
	size, sum, err := fileDigest(pdk)
	if err != nil {
		return nil, fmt.Errorf("cannot seed %s: %w", pdk, err)
	}
	if size != rev.Size || sum != rev.SHA256 {
		return nil, fmt.Errorf("cannot seed %s: it does not match its app-revision (size %d, sha256 %s; want %d, %s): sign it again", pdk, size, sum, rev.Size, rev.SHA256)
	}
	if rev.Arch != arch && rev.Arch != "all" {
		return nil, fmt.Errorf("cannot seed %s: built for %s, not %s", pdk, rev.Arch, arch)
	}
	if rev.Type == manifest.TypeBase {
		return nil, fmt.Errorf("cannot seed %s: it is a base (give it with --base)", pdk)
	}
	m, err := pack.ReadManifest(pdk)
	if err != nil {
		return nil, fmt.Errorf("cannot seed %s: %w", pdk, err)
	}
	if m.Name != rev.Name || m.Version != rev.Version {
		return nil, fmt.Errorf("cannot seed %s: its manifest says %s %s, its app-revision %s %s", pdk, m.Name, m.Version, rev.Name, rev.Version)
	}
	stem := rev.Name + "_" + strconv.Itoa(rev.Revision)
	return &seedApp{
		SeedApp: SeedApp{
			Name: rev.Name, Revision: rev.Revision, Version: rev.Version, Type: rev.Type,
			SHA256: rev.SHA256, Size: rev.Size, SignKey: rev.SignKey, Publisher: rev.Publisher,
			Package: "packages/" + stem + pack.Ext, Assertion: "assertions/" + stem + ".assert",
		},
		pdk: pdk, bundle: bundle,
	}, nil
}

func fileDigest(name string) (int64, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// seedJSON returns the content of SeedFile.
func seedJSON(apps []*seedApp) ([]byte, error) {
	s := Seed{Apps: []SeedApp{}}
	for _, a := range apps {
		s.Apps = append(s.Apps, a.SeedApp)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	return append(data, '\n'), err
}

// loadKeys reads armored public keys from files.
func loadKeys(files []string) ([]*keys.PublicKey, error) {
	var out []*keys.PublicKey
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		k, err := keys.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", file, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// trustedKeys returns the keys that an image's packages and base are
// checked against: opts.TrustedKeys, or else the keys the base trusts.
func trustedKeys(opts DiskOptions) ([]*keys.PublicKey, error) {
	if len(opts.TrustedKeys) > 0 {
		return loadKeys(opts.TrustedKeys)
	}
	return baseTrustedKeys(opts.Base)
}

// baseTrustedKeys returns the trusted root keys inside a base image: the
// keys the device will check apps against.
func baseTrustedKeys(base string) ([]*keys.PublicKey, error) {
	tmp, err := os.MkdirTemp("", "paddock-keys-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dest := filepath.Join(tmp, "root")
	out, err := exec.Command("unsquashfs", "-q", "-n", "-d", dest, base, "etc/paddock/trusted").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cannot read trusted keys of base %s: %v: %s", base, err, strings.TrimSpace(string(out)))
	}
	files, _ := filepath.Glob(filepath.Join(dest, "etc/paddock/trusted/*.asc"))
	return loadKeys(files)
}
