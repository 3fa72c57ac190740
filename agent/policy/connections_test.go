package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/ota/manifest"
)

// hostDev shows this machine's /dev under the test's root directory, so
// that the policy reads real device nodes.
func hostDev(t *testing.T) {
	t.Helper()
	dirstest.SetRoot(t)
	if err := os.Symlink("/dev", filepath.Join(dirs.Root, "dev")); err != nil {
		t.Fatal(err)
	}
}

// realNode returns major and minor of a character device of this machine.
func realNode(t *testing.T, path string) (int64, int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Skipf("skipping: this machine has no character device %s (%v)", path, err)
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
}

// TestResolveSerialConnection resolves a serial-port plug connected to a
// gadget slot on a real node of this machine: the device cgroup allows its
// major:minor read from the node, AppArmor its path, and the policy lists
// the node for the app's user and says a disconnect stops the command.
func TestResolveSerialConnection(t *testing.T) {
	hostDev(t)
	major, minor := realNode(t, "/dev/ttyS0")
	m, err := manifest.Parse([]byte(appYAML), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	slot := &gadget.Slot{Name: "console", Interface: "serial-port", SlotAttrs: interfaces.SlotAttrs{Path: "/dev/ttyS0"}}
	conns := append(AutoConnections(m), Connection{Plug: "serial-port", Interface: "serial-port", Slot: "gadget:console", Gadget: slot})
	pols, err := Resolve(m, 3, launch.User{UID: 70001, GID: 70001}, conns)
	if err != nil {
		t.Fatal(err)
	}
	var serve, hello *profiles.Policy
	for _, p := range pols {
		switch p.Command {
		case "serve":
			serve = p
		case "hello":
			hello = p
		}
	}
	want := profiles.Device{Type: "c", Major: major, Minor: minor, Access: "rw"}
	if !slices.Contains(serve.Devices, want) {
		t.Errorf("serve: got devices %+v, want %+v among them", serve.Devices, want)
	}
	if !slices.Contains(serve.AppArmor.Snippets, "/dev/ttyS0 rwk,") {
		t.Errorf("serve: got AppArmor rules %q, want /dev/ttyS0 rwk,", serve.AppArmor.Snippets)
	}
	if got := serve.Nodes(); !slices.Equal(got, []string{"/dev/ttyS0"}) || !serve.StopsOnDisconnect("serial-port") {
		t.Errorf("serve: got nodes %q, stops %v, want /dev/ttyS0 and stop", got, serve.StopsOnDisconnect("serial-port"))
	}
	if !slices.Equal(serve.Plugs, []string{"network-bind", "serial-port"}) {
		t.Errorf("serve: got plugs %q", serve.Plugs)
	}
	// hello has no serial-port plug: the connection is not its.
	if slices.Contains(hello.Devices, want) || len(hello.Nodes()) != 0 {
		t.Errorf("hello got the serial port of serve: %+v", hello.Devices)
	}

	// A node absent now is listed, not allowed; it is granted once the
	// policy is resolved again after it appears.
	slot.Path = "/dev/ttyS77"
	pols, err = Resolve(m, 3, launch.User{UID: 70001, GID: 70001}, conns)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pols {
		if p.Command == "serve" && (len(p.Devices) != len(profiles.DefaultDevices()) || !slices.Equal(p.Nodes(), []string{"/dev/ttyS77"})) {
			t.Errorf("absent node: got devices %+v nodes %q, want the defaults and the node listed", p.Devices, p.Nodes())
		}
	}
}

// TestResolveRefusesBadConnections checks that a connection the policy
// cannot honour is an error, not a silently smaller sandbox.
func TestResolveRefusesBadConnections(t *testing.T) {
	dirstest.SetRoot(t)
	m, err := manifest.Parse([]byte(appYAML), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    Connection
	}{
		{"hardware without slot", Connection{Plug: "serial-port", Interface: "serial-port", Slot: "gadget:x"}},
		{"slot of another interface", Connection{Plug: "serial-port", Interface: "serial-port", Gadget: &gadget.Slot{Interface: "i2c"}}},
		{"interface not the plug's", Connection{Plug: "serial-port", Interface: "i2c", Gadget: &gadget.Slot{Interface: "i2c"}}},
		{"unknown interface", Connection{Plug: "serial-port", Interface: "teleport"}},
		// A device name that would add AppArmor rules of its own.
		{"rule in a hotplugged node", Connection{Plug: "serial-port", Interface: "serial-port",
			Gadget:  &gadget.Slot{Interface: "serial-port", SlotAttrs: interfaces.SlotAttrs{USBVendor: "0403"}},
			Devices: []gadget.Device{{Name: "/dev/x rw, /etc/shadow", Props: map[string]string{gadget.PropVendor: "0403"}}}}},
	}
	for _, tt := range tests {
		if _, err := Resolve(m, 3, launch.User{UID: 70001, GID: 70001}, []Connection{tt.c}); err == nil {
			t.Errorf("%s: resolved, want an error", tt.name)
		}
	}
}
