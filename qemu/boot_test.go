package qemu

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
)

// fakeInit is a stand-in for 'paddock init' that speaks the console
// protocol: it decodes paddock.cmd from the kernel command line, runs it and
// powers off. Without paddock.cmd it echoes a line read from the console
// (for trying 'paddock vm run' by hand).
const fakeInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
echo "paddock: agent ready"
cmd=$(sed -n 's/.*paddock\.cmd=\([^ ]*\).*/\1/p' /proc/cmdline | base64 -d)
[ -n "$cmd" ] || cmd='read line; echo "got $line"'
echo "paddock: cmd begin"
sh -c "$cmd" 2>&1
echo "paddock: cmd end $?"
echo "paddock: power off"
poweroff -f
`

// bootConfig returns a Config that boots the cached guest kernel with an
// initramfs of busybox and fakeInit, or skips the test.
func bootConfig(t *testing.T) Config {
	t.Helper()
	return busyboxConfig(t, fakeInit)
}

// busyboxConfig returns a Config that boots an initramfs of busybox with
// init as /init, or skips the test.
func busyboxConfig(t *testing.T, init string) Config {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM (a few seconds under TCG)")
	}
	testutil.NeedCommand(t, "qemu-system-x86_64", "qemu-system-x86")
	kernel, err := FindKernel(AMD64)
	if err != nil {
		t.Skip(err)
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs a static /bin/busybox (apt-get install busybox-static)")
	}
	var cpio bytes.Buffer
	zw := gzip.NewWriter(&cpio)
	w := &newcWriter{w: zw}
	w.dir("bin")
	w.dir("dev")
	w.dir("proc")
	w.node("dev/console", 0o020600, 5, 1) // init's stdio; no devtmpfs in an initramfs
	w.file("bin/busybox", 0o755, busybox)
	w.file("init", 0o755, []byte(init))
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio.gz")
	if err := os.WriteFile(initrd, cpio.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return Config{Kernel: kernel, Initrd: initrd, Timeout: 2 * time.Minute}
}

// markerClock notes when a line first appears on the console.
type markerClock struct {
	start  time.Time
	marker string
	mu     sync.Mutex
	seen   bytes.Buffer
	at     time.Duration
}

func (m *markerClock) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen.Write(p)
	if m.at == 0 && bytes.Contains(m.seen.Bytes(), []byte(m.marker)) {
		m.at = time.Since(m.start)
	}
	return len(p), nil
}

func TestBootRunCommand(t *testing.T) {
	c := bootConfig(t)
	t.Parallel()
	clock := &markerClock{start: time.Now(), marker: "paddock: agent ready"}
	c.Console = clock
	out, code, err := RunCommand(context.Background(), c, "echo hello; exit 3")
	total := time.Since(clock.start)
	if err != nil {
		t.Fatal(err)
	}
	if out != "hello" || code != 3 {
		t.Errorf("got %q, %d, want %q, 3", out, code, "hello")
	}
	t.Logf("boot to first marker: %v, to power off: %v", clock.at.Round(time.Millisecond), total.Round(time.Millisecond))
}

func TestBootPowerCut(t *testing.T) {
	c := bootConfig(t)
	t.Parallel()
	c, err := withCommand(c, "echo sleeping; sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := v.Expect(ctx, "sleeping"); err != nil {
		v.PowerCut()
		t.Fatal(err)
	}
	if err := v.PowerCut(); err != nil {
		t.Fatal(err)
	}
	if err := v.Wait(); !errors.Is(err, ErrPowerCut) {
		t.Errorf("got %v, want ErrPowerCut", err)
	}
	if err := v.Expect(ctx, "paddock: cmd end"); !errors.Is(err, ErrExited) {
		t.Errorf("got %v after the power cut, want ErrExited", err)
	}
}

func TestBootFailed(t *testing.T) {
	c := bootConfig(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	// The guest stays up after the failure; RunCommand must not wait for it.
	_, _, err := RunCommand(ctx, c, "echo 'paddock: boot failed: on purpose'; sleep 600")
	if !errors.Is(err, ErrBootFailed) || !strings.Contains(err.Error(), "on purpose") {
		t.Errorf("got %v, want ErrBootFailed saying on purpose", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v, want an early failure", d)
	}
}

func TestContextKillsVM(t *testing.T) {
	c := bootConfig(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := withCommand(c, "sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Expect(context.Background(), "paddock: cmd begin"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := v.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// newcWriter writes a cpio archive in the "newc" format the kernel unpacks
// into the initramfs. Errors stick until close.
type newcWriter struct {
	w   interface{ Write([]byte) (int, error) }
	ino int
	err error
}

func (w *newcWriter) dir(name string)                      { w.entry(name, 0o040755, 0, 0, nil) }
func (w *newcWriter) file(name string, perm int, b []byte) { w.entry(name, 0o100000|perm, 0, 0, b) }
func (w *newcWriter) node(name string, mode, major, minor int) {
	w.entry(name, mode, major, minor, nil)
}

func (w *newcWriter) close() error {
	w.entry("TRAILER!!!", 0, 0, 0, nil)
	return w.err
}

func (w *newcWriter) entry(name string, mode, major, minor int, data []byte) {
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	w.write([]byte(hdr + name + "\x00"))
	w.pad(len(hdr) + len(name) + 1)
	w.write(data)
	w.pad(len(data))
}

func (w *newcWriter) pad(n int) { w.write(make([]byte, (4-n%4)%4)) }

func (w *newcWriter) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}
