package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/internal/testutil"
)

// addBlock adds a block device to the fake /sys/class/block and, for a
// partition, its node in the fake /dev.
func addBlock(t *testing.T, root, dev, partname string) {
	t.Helper()
	uevent := "MAJOR=254\nMINOR=0\nDEVNAME=" + dev + "\nDEVTYPE=disk\n"
	if partname != "" {
		uevent = "MAJOR=254\nMINOR=1\nDEVNAME=" + dev + "\nDEVTYPE=partition\nPARTN=1\nPARTNAME=" + partname + "\n"
		testutil.WriteFile(t, filepath.Join(root, "dev/"+dev), "")
	}
	testutil.WriteFile(t, filepath.Join(root, "sys/class/block/"+dev+"/uevent"), uevent)
}

func fakeDisk(t *testing.T, root string) {
	addBlock(t, root, "vda", "")
	for i, name := range []string{"boot", "bootenv", "base-a", "base-b", "data"} {
		addBlock(t, root, "vda"+string(rune('1'+i)), name)
	}
	addBlock(t, root, "loop0", "")
}

func TestFindPartitions(t *testing.T) {
	root := dirstest.SetRoot(t)
	fakeDisk(t, root)
	parts, err := findPartitions()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := parts.String(), "base-a=vda3 base-b=vda4 boot=vda1 bootenv=vda2 data=vda5"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := parts.node("data"), filepath.Join(root, "dev/vda5"); got != want {
		t.Errorf("got node %s, want %s", got, want)
	}
}

func TestFindPartitionsTwoDisks(t *testing.T) {
	root := dirstest.SetRoot(t)
	fakeDisk(t, root)
	addBlock(t, root, "sda5", "data")
	if _, err := findPartitions(); err == nil || !strings.Contains(err.Error(), `two partitions named "data"`) {
		t.Errorf("got %v, want an error naming the duplicate", err)
	}
}

func TestWaitPartitions(t *testing.T) {
	root := dirstest.SetRoot(t)
	os.MkdirAll(filepath.Join(root, "sys/class/block"), 0o755)
	addBlock(t, root, "vda", "")
	go func() {
		time.Sleep(100 * time.Millisecond) // the disk's driver is loading
		fakeDisk(t, root)
	}()
	parts, err := waitPartitions(5*time.Second, "bootenv", "data")
	if err != nil {
		t.Fatal(err)
	}
	if parts["bootenv"] != "vda2" {
		t.Errorf("got %s, want bootenv=vda2", parts)
	}
}

func TestWaitPartitionsTimeout(t *testing.T) {
	root := dirstest.SetRoot(t)
	addBlock(t, root, "vda1", "bootenv")
	addBlock(t, root, "vda2", "data")
	os.Remove(filepath.Join(root, "dev/vda2")) // listed, but no node yet
	_, err := waitPartitions(100*time.Millisecond, "bootenv", "data", "base-a")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"data (no ", "base-a", "found: bootenv=vda1 data=vda2", "paddock.modules"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
