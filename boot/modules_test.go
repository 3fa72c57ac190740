package boot

import (
	"path/filepath"
	"slices"
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

func TestModuleList(t *testing.T) {
	root := dirstest.SetRoot(t)
	if names, err := moduleList("6.1.0-56-amd64"); err != nil || names != nil {
		t.Errorf("without a list: got %v, %v, want nothing", names, err)
	}
	testutil.WriteFile(t, filepath.Join(root, "lib/modules/6.1.0-56-amd64/paddock.modules"), "# for virtio disks\nvirtio_ring\n\n  virtio_blk  \ncrc32c-intel # fails under TCG\n")
	names, err := moduleList("6.1.0-56-amd64")
	if want := []string{"virtio_ring", "virtio_blk", "crc32c-intel"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("got %q, %v, want %q", names, err, want)
	}
}
