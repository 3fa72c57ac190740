// Package imagestest reads the disk images that package images builds,
// for tests.
package imagestest

import (
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Open opens the disk image img read-only until the test ends and returns
// it with its GUID partition table.
func Open(t testing.TB, img string) (*disk.Disk, *gpt.Table) {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatal(err)
	}
	table, ok := pt.(*gpt.Table)
	if !ok {
		t.Fatalf("%s has a %T, want a GPT", img, pt)
	}
	return d, table
}
