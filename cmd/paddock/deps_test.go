package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeviceBuildOmitsTools proves what a device build (-tags
// paddock_omit_tools) does not link: the operator's fleet tools, the image
// builder and the QEMU harness, and their dependencies.
func TestDeviceBuildOmitsTools(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "paddock_omit_tools", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{
		"paddock.dev/paddock/mqtt/fleet",
		"paddock.dev/paddock/images",
		"paddock.dev/paddock/qemu",
		"github.com/diskfs/go-diskfs",
		"github.com/u-root/u-root/pkg/cpio",
	} {
		for _, d := range deps {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("the device build links %s", d)
				break
			}
		}
	}
	// What a device does need is there.
	for _, need := range []string{"paddock.dev/paddock/agent/daemon", "paddock.dev/paddock/confine/launch", "paddock.dev/paddock/boot", "paddock.dev/paddock/mqtt", "paddock.dev/paddock/gadget/interfaces",
		// The agent reads the slots of the installed gadget package.
		"paddock.dev/paddock/gadget"} {
		found := false
		for _, d := range deps {
			found = found || d == need
		}
		if !found {
			t.Errorf("the device build lacks %s", need)
		}
	}
}
