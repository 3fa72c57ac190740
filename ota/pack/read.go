package pack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"paddock.dev/paddock/ota/manifest"
)

// unsquashfsPath is the unsquashfs binary; tests may swap it.
var unsquashfsPath = "unsquashfs"

// ReadManifest reads and parses meta/app.yaml from the package pdk without
// mounting it, so it works without root. Errors from the manifest name it as
// PDK:meta/app.yaml.
func ReadManifest(pdk string) (*manifest.Manifest, error) {
	if _, err := os.Stat(pdk); err != nil {
		return nil, fmt.Errorf("cannot read manifest of %s: %w", pdk, err)
	}
	data, err := readFile(pdk, manifest.Path, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest of %s: %w", pdk, err)
	}
	return manifest.Parse(data, pdk+":"+manifest.Path)
}

// ReadFile returns the file name inside the package pdk, without mounting
// it, refusing files larger than max bytes.
func ReadFile(pdk, name string, max int) ([]byte, error) { return readFile(pdk, name, max) }

// readFile returns the file name inside the SquashFS image pdk, refusing
// files larger than max bytes.
func readFile(pdk, name string, max int) ([]byte, error) {
	out := &capBuffer{max: max}
	var stderr bytes.Buffer
	cmd := exec.Command(unsquashfsPath, "-q", "-cat", pdk, name)
	cmd.Stdout, cmd.Stderr = out, &stderr
	err := cmd.Run()
	if out.over {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("%w (install squashfs-tools)", err)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "no matches") || strings.Contains(msg, "does not exist") {
			return nil, fmt.Errorf("%s is not in the package (is it a paddock package made with 'paddock pack'?)", name)
		}
		if msg == "" {
			return nil, err
		}
		return nil, fmt.Errorf("unsquashfs: %s: %w", lastLine(msg), err)
	}
	return out.Bytes(), nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// capBuffer is a bytes.Buffer that fails writes beyond max bytes.
type capBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		return 0, errors.New("too large")
	}
	return b.Buffer.Write(p)
}
