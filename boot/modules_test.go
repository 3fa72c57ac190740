package boot

import (
	"slices"
	"testing"
)

func TestModuleList(t *testing.T) {
	root := withRoot(t)
	if names, err := moduleList("6.1.0-56-amd64"); err != nil || names != nil {
		t.Errorf("without a list: got %v, %v, want nothing", names, err)
	}
	writeFile(t, root, "lib/modules/6.1.0-56-amd64/paddock.modules", "# for virtio disks\nvirtio_ring\n\n  virtio_blk  \ncrc32c-intel # fails under TCG\n")
	names, err := moduleList("6.1.0-56-amd64")
	if want := []string{"virtio_ring", "virtio_blk", "crc32c-intel"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("got %q, %v, want %q", names, err, want)
	}
}
