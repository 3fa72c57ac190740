// Package cli holds the app developer's commands that work on packages and
// keys: pack, key and sign.
package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	pcli "paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pack"
)

const packUsage = `
Usage: paddock pack DIR [-o FILE] [--json]

Pack builds a package (.pdk) from the app tree DIR: a read-only SquashFS
image that a device mounts as it is. DIR must hold meta/app.yaml, such as:

    name: hello
    version: "1.0"
    summary: Says hello
    apps:
      hello:
        command: bin/hello        # a path inside DIR, then any arguments

Before writing anything, pack checks the manifest, that every app, health
and hook command names an executable file inside DIR, and that no symlink
leads outside DIR. The same tree always gives the same bytes (owners, times
and extended attributes are not kept), so anyone can rebuild a package and
compare its sha256. Sign the result with 'paddock sign' before installing it.

The package is written to NAME_VERSION.pdk in the current directory unless
-o says otherwise; an existing file is replaced atomically.

Examples:
    paddock pack examples/hello
    paddock pack . -o /tmp/hello.pdk --json
`

// PackResult is what 'paddock pack' reports about the package it wrote.
type PackResult struct {
	Path    string `json:"path"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    string `json:"type"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// Pack runs 'paddock pack DIR [-o FILE] [--json]'.
func Pack(args []string, stdout, stderr io.Writer) error {
	fs := pcli.NewFlagSet("pack", packUsage, stdout)
	out := fs.String("o", "", "write the package to `FILE` (default NAME_VERSION.pdk in the current directory)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := pcli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return pcli.UsageError("pack takes one app directory, got %d arguments (try 'paddock pack examples/hello')", len(pos))
	}
	m, err := pack.Pack(pos[0], *out)
	if err != nil {
		return err
	}
	res, err := packDescribe(m, *out)
	if err != nil {
		return err
	}
	if *asJSON {
		return pcli.WriteJSON(stdout, res)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s\n  name:    %s\n  version: %s\n  type:    %s\n  size:    %d bytes\n  sha256:  %s\n",
		res.Path, res.Name, res.Version, res.Type, res.Size, res.SHA256)
	return err
}

// packDescribe returns the result for the package of m written to out.
func packDescribe(m *manifest.Manifest, out string) (*PackResult, error) {
	if out == "" {
		out = pack.DefaultName(m)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", out, err)
	}
	return &PackResult{
		Path: filepath.Clean(out), Name: m.Name, Version: m.Version, Type: m.Type,
		Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
	}, nil
}
