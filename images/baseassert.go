package images

import (
	"errors"
	"fmt"
	"os"

	"paddock.dev/paddock/ota/baseupdate"
	"paddock.dev/paddock/ota/trust"
)

// checkBaseAssertion reads the base's assertions (BASE.assert, from
// 'paddock image base --key'), when there are any, and checks them: the
// signature against the trusted keys (--trust, or the base's own), the
// architecture, and the image's size and sha256. It returns the bundle to
// keep on the data partition for slot a, or nil without BASE.assert.
func checkBaseAssertion(opts DiskOptions, p *progress) ([]byte, error) {
	bundle, err := os.ReadFile(opts.Base + ".assert")
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(p.w, "note: no %s.assert: the device cannot check its base's revision nor mount it through dm-verity (sign the base with 'paddock image base --key')\n", opts.Base)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.begin("verify base %s", opts.Base)
	trusted, err := trustedKeys(opts)
	if err != nil {
		return nil, err
	}
	b, err := trust.CheckBase(bundle, trusted, timeNow(), opts.Arch, trust.Running{})
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", opts.Base, err)
	}
	f, err := os.Open(opts.Base)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() != b.Size {
		return nil, fmt.Errorf("base %s is %d bytes, its base-revision says %d (build and sign it again with 'paddock image base')", opts.Base, fi.Size(), b.Size)
	}
	sum, _, err := baseupdate.HashChunks(f, b.Size, b.ChunkSize)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", opts.Base, err)
	}
	if sum != b.SHA256 {
		return nil, fmt.Errorf("base %s has sha256 %s, its base-revision says %s (build and sign it again with 'paddock image base')", opts.Base, sum, b.SHA256)
	}
	p.done(b.Size)
	return bundle, nil
}
