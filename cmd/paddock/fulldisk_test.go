package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// smallDataPartition mounts a tmpfs of size (such as "16m") as the device's
// data partition, var/lib/paddock, as the appliance has it; it is unmounted
// when the test ends, after the agent stops.
func smallDataPartition(t *testing.T, d *device, size string) string {
	t.Helper()
	lib := testutil.MountTmpfs(t, d.path("var/lib/paddock"), "size="+size+",mode=0755")
	t.Cleanup(d.stopDaemon) // before the unmount: cleanups run last first
	return lib
}

// freeBytes returns the bytes available in the filesystem of dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// alive fails the test if the agent has exited.
func (d *device) alive(step string) {
	d.t.Helper()
	select {
	case err := <-d.daemonDone:
		d.daemon = nil
		d.t.Fatalf("%s: the agent exited (%v)\n%s", step, err, d.daemonLog)
	default:
	}
	if strings.Contains(d.daemonLog.String(), "panic") {
		d.t.Fatalf("%s: the agent panicked\n%s", step, d.daemonLog)
	}
}

// TestFullDisk pins issue 9 item 4 on the host, with the real agent over a
// 16 MiB data partition. Before: an app that filled the partition made the
// next change panic the agent ('paddock revert' and 'paddock remove' of that
// app crashed it, so nothing could free the space), and a refresh whose data
// copy did not fit panicked, left the copy's .tmp behind and crash-looped at
// every restart. Now: installs that do not fit are refused up front, the
// agent restarts on a full disk, revert and remove work there (the state's
// reserve lets their checkpoints through, and the agent says it is degraded
// until the reserve is back), and a data copy that does not fit is refused
// with what it needs and what is free, leaving the previous revision current,
// also when the agent restarts in the middle of that copy.
func TestFullDisk(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	lib := smallDataPartition(t, d, "16m")
	d.setupKeys("hello")
	for i, v := range []string{"1.0", "2.0", "3.0"} {
		d.packHello(v, i+1)
	}
	d.startDaemon("")
	d.ok("install", "hello-1.pdk")
	d.ok("refresh", "hello-2.pdk")

	// The app fills the data partition.
	testutil.FillDisk(t, filepath.Join(lib, "data/hello/2/filler"))
	r := d.paddock("refresh", "hello-3.pdk")
	if r.code == 0 || !strings.Contains(r.stderr, "not enough disk space") || !strings.Contains(r.stderr, "is free") {
		t.Errorf("refresh on a full disk: got exit %d, %q, want a refusal saying what is needed and free", r.code, r.stderr)
	}
	d.alive("refresh on a full disk")

	// A restart on the full disk comes back.
	d.stopDaemon()
	d.startDaemon("")
	if apps := d.list(); len(apps) != 1 || apps[0].Revision != 2 {
		t.Fatalf("after a restart on a full disk: got %+v, want hello revision 2", apps)
	}

	// Revert works on the full disk, and the agent says its reserve is used.
	d.ok("revert", "hello")
	d.alive("revert on a full disk")
	if apps := d.list(); len(apps) != 1 || apps[0].Revision != 1 {
		t.Errorf("after revert: got %+v, want hello revision 1", apps)
	}
	if r := d.paddock("list"); !strings.Contains(r.stderr, "warning: the paddock agent is degraded") || !strings.Contains(r.stderr, "reserve") {
		t.Errorf("list with the reserve used: got stderr %q, want a warning about the reserve", r.stderr)
	}

	// Remove works on the full disk and gives the space back.
	d.ok("remove", "hello")
	d.alive("remove on a full disk")
	if free := freeBytes(t, lib); free < 12<<20 {
		t.Errorf("after remove: got %d bytes free, want the app's space back", free)
	}
	// The reserve is made again, and the warning goes.
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		r := d.paddock("list")
		if r.stderr == "" {
			break
		}
		if time.Since(start) > 40*time.Second {
			t.Fatalf("still degraded 40s after remove freed the space: %q", r.stderr)
		}
	}
	if fi, err := os.Stat(filepath.Join(lib, "state.reserve")); err != nil || fi.Size() < 1<<20 {
		t.Errorf("got reserve %v, %v, want it made again", fi, err)
	}

	// A refresh whose data copy does not fit is refused before it copies.
	d.ok("install", "hello-1.pdk")
	testutil.WriteFile(t, filepath.Join(lib, "data/hello/1/big"), strings.Repeat("x", 9<<20))
	r = d.paddock("refresh", "hello-2.pdk")
	if r.code == 0 || !strings.Contains(r.stderr, "copy the data of hello from revision 1") || !strings.Contains(r.stderr, "needs 9.0 MiB") {
		t.Errorf("refresh whose data does not fit: got exit %d, %q, want a refusal saying it needs 9.0 MiB", r.code, r.stderr)
	}
	d.alive("refresh whose data does not fit")
	if _, err := os.Lstat(filepath.Join(lib, "data/hello/2.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got the copy's .tmp left (%v), want none", err)
	}

	// Cut in the copy: at each restart the copy ran again and panicked.
	// Now the resumed copy is refused the same way and the change undone.
	d.stopDaemon()
	d.startDaemon("copy-data:before")
	if r := d.paddock("refresh", "hello-2.pdk"); r.code == 0 {
		t.Fatalf("refresh succeeded though the agent was cut")
	}
	if code := d.waitDaemonExit(); code != faultExitCode {
		t.Fatalf("agent exit code: got %d, want %d\n%s", code, faultExitCode, d.daemonLog)
	}
	d.startDaemon("")
	d.waitIdle()
	d.alive("restart in the copy that does not fit")
	if apps := d.list(); len(apps) != 1 || apps[0].Revision != 1 {
		t.Errorf("after a restart in the copy that does not fit: got %+v, want hello revision 1", apps)
	}
	var changes []struct{ Summary, Status, Err string }
	if err := json.Unmarshal([]byte(d.ok("changes", "--json")), &changes); err != nil || len(changes) == 0 {
		t.Fatalf("cannot read the changes: %v", err)
	}
	if last := changes[len(changes)-1]; last.Status != "Error" || !strings.Contains(last.Err, "needs 9.0 MiB") {
		t.Errorf("got the resumed refresh %+v, want it in Error, saying what it needs", last)
	}
	if _, err := os.Lstat(filepath.Join(lib, "data/hello/2.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got the copy's .tmp left after the restart (%v), want none", err)
	}
}
