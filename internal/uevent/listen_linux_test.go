package uevent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// TestListenKernelEvent asks the kernel for a synthetic "change" event of
// the null device (writing to its uevent file, which changes nothing) and
// receives it from the kernel's group.
func TestListenKernelEvent(t *testing.T) {
	testutil.NeedRoot(t, "ask the kernel for a synthetic uevent")
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" + hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
	if err := os.WriteFile("/sys/devices/virtual/mem/null/uevent", []byte("change "+id), 0); err != nil {
		t.Skipf("cannot ask for a synthetic uevent: %v", err)
	}
	got := make(chan *Event)
	go func() {
		for {
			e, err := l.Next()
			if err != nil {
				close(got)
				return
			}
			if e.Env["SYNTH_UUID"] == id {
				got <- e
				return
			}
		}
	}()
	select {
	case e, ok := <-got:
		if !ok {
			t.Fatal("the listener ended before the event came")
		}
		if e.Action != "change" || e.Node() != "/dev/null" || e.Major != 1 || e.Minor != 3 || e.Subsystem != "mem" {
			t.Errorf("got %+v, want change of /dev/null 1:3 (mem)", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
}

// TestListenDropsUserspaceSenders sends a forged "add" event to the
// kernel's group from a process, in a network namespace of the test's own
// (uevent sockets belong to one): the listener drops it and counts it.
func TestListenDropsUserspaceSenders(t *testing.T) {
	testutil.NeedRoot(t, "create a network namespace")
	l, send := inNewNetns(t)
	defer l.Close()
	forged := msg("add@/devices/virtual/tty/ttyFAKE", "ACTION=add", "DEVPATH=/devices/virtual/tty/ttyFAKE", "SUBSYSTEM=tty", "MAJOR=1", "MINOR=1", "DEVNAME=ttyFAKE")
	if err := unix.Sendto(send, forged, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		e, err := l.Next()
		if err == nil {
			err = errors.New("got the forged event " + e.DevPath)
		}
		done <- err
	}()
	testutil.WaitFor(t, "the forged event to be dropped", 10*time.Second, func() bool { return l.Dropped() == 1 })
	l.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close: got %v, want os.ErrClosed", err)
	}
}

// inNewNetns makes a listener and a sending socket in a new network
// namespace, on a thread that goes back to the test's namespace after.
func inNewNetns(t *testing.T) (*Listener, int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	l, lerr := Listen()
	send, serr := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		panic("cannot go back to the test's network namespace: " + err.Error())
	}
	if lerr != nil || serr != nil {
		t.Fatal(lerr, serr)
	}
	t.Cleanup(func() { unix.Close(send) })
	return l, send
}
