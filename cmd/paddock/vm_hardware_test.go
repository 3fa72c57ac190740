package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/qemu"
)

// hardwareApp is the escape app with hardware plugs: the gadget's serial
// port, its I2C bus, and a USB serial adapter matched by its USB ids.
const hardwareApp = `name: escape
version: "1"
summary: Serves requests to open device nodes
apps:
  escape:
    command: bin/escape
    plugs:
      serial-port:
      i2c:
      usb:
        interface: serial-port
`

// hardwareGadget are the slots of the test's gadget, after the example's volumes.
const hardwareGadget = `
slots:
  serial1:
    interface: serial-port
    path: /dev/ttyS1
  i2c0:
    interface: i2c
    path: /dev/i2c-0
  adapter:
    interface: serial-port
    usb-vendor: "0403"
    usb-product: "6001"
connections:
  - {plug: "escape:usb", slot: adapter}
`

// hardwareScript runs in the guest, with the i2c-stub module next to it.
// Each app instance reads requests from a FIFO; "ask" prints its answer
// after a tag the test looks for.
const hardwareScript = `trap '' PIPE
cd /tmp
insmod /tmp/i2c-stub.ko chip_addr=0x50 || echo "i2c-stub: not loaded"
i=0; while [ ! -e /dev/i2c-0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
start() { mkfifo /tmp/in.$1; : > /tmp/out.$1; paddock run escape -- serve < /tmp/in.$1 > /tmp/out.$1 2>&1 & eval "exec $2>/tmp/in.$1"; eval "n$1=0"; }
ask() { eval "echo \"\$3\" >&$2; n$1=\$((n$1+1)); k=\$n$1"; j=0; while [ "$(wc -l < /tmp/out.$1)" -lt $k ] && [ $j -lt 240 ]; do sleep 0.05; j=$((j+1)); done; echo "$4: $(sed -n "${k}p" /tmp/out.$1)"; }
stamp() { echo "t $(cut -d' ' -f1 /proc/uptime) $(date +%s) $1"; }
running() { pidof escape >/dev/null && echo "$1: running" || echo "$1: gone"; }
` + waitNetwork + `stamp start
start a 3
ask a 3 "open /dev/ttyS1" serial-before
ask a 3 "open /dev/i2c-0" i2c-before
stamp "paddock connect escape:i2c i2c0"
paddock connect escape:i2c i2c0
ask a 3 "open /dev/i2c-0" i2c-connected
echo "label: $(cat /proc/$(pidof escape | cut -d' ' -f1)/attr/current)"
stamp "serial: connect"
echo "serial: connect"
i=0; while [ $i -lt 600 ]; do ask a 3 "open /dev/ttyS1" serial-try >/dev/null; tail -n 1 /tmp/out.a | grep -q allowed && break; sleep 0.1; i=$((i+1)); done
stamp "serial connected"
ask a 3 "hold /dev/ttyS1" serial-connected
ask a 3 "write /dev/ttyS1 hello-from-escape" serial-write
echo "serial: disconnect"
i=0; while pidof escape >/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
stamp "serial disconnected"
running serial-holder
start b 4
ask b 4 "open /dev/ttyS1" serial-disconnected
ask b 4 "open /dev/i2c-0" i2c-still
stamp "paddock disconnect escape:i2c"
paddock disconnect escape:i2c
sleep 0.5
start c 5
ask c 5 "open /dev/i2c-0" i2c-disconnected
start d 6
stamp "echo usb: plug"
echo "usb: plug"
i=0; while [ ! -e /dev/ttyUSB0 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
ls -l /dev/ttyUSB0
i=0; while [ $i -lt 200 ]; do ask d 6 "open /dev/ttyUSB0" usb-try >/dev/null; tail -n 1 /tmp/out.d | grep -q allowed && break; sleep 0.1; i=$((i+1)); done
stamp "echo usb-tries: $i"
echo "usb-tries: $i"
ask d 6 "hold /dev/ttyUSB0" usb-plugged
ask d 6 "write /dev/ttyUSB0 hello-over-usb" usb-write
stamp "echo usb: unplug"
echo "usb: unplug"
i=0; while [ -e /dev/ttyUSB0 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
i=0; while grep -q '"major": 188' /var/lib/paddock/profiles/escape/1/escape.policy && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
stamp "usb policy"
echo "usb-policy: $(grep -c '"major": 188' /var/lib/paddock/profiles/escape/1/escape.policy)"
ask d 6 "open /dev/ttyUSB0" usb-unplugged
paddock connections escape
dmesg | grep 'apparmor="DENIED"' | grep i2c
true
`

// TestApplianceHardwareInQEMU checks issue 11's live connections on real
// devices of a booted appliance, in one boot: a running app cannot open the
// second serial port (/dev/ttyS1, a file on the host) until 'paddock fleet
// send ... connect', through mosquitto, connects its serial-port plug to
// the gadget's slot, then writes a line that arrives on the host; the
// fleet's disconnect stops it and a new launch is refused. The same for a
// real I2C bus (i2c-stub, i2c-dev) with AppArmor enforced, through 'paddock
// connect' in the guest: the running app's profile is replaced. A USB serial adapter
// plugged over QMP is granted to the connected app while it runs, and gone
// from its policy after it is unplugged.
func TestApplianceHardwareInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	buildEscape(t, d, hardwareApp)
	d.setupKeys("escape,pc")
	d.ok("pack", filepath.Join(d.work, "escape-src"), "-o", "escape.pdk")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
	gadgetDir := filepath.Join(d.work, "gadget-src")
	if err := os.CopyFS(gadgetDir, os.DirFS(filepath.Join(examples, "gadget-amd64"))); err != nil {
		t.Fatal(err)
	}
	example := testutil.ReadFile(t, filepath.Join(gadgetDir, "gadget.yaml"))
	volumes, _, _ := strings.Cut(example, "\n# The second serial port")
	testutil.WriteFile(t, filepath.Join(gadgetDir, "gadget.yaml"), volumes+hardwareGadget)
	d.ok("pack", gadgetDir, "-o", "gadget.pdk")
	d.ok("sign", "gadget.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")

	// The fleet: a broker on the host, which the guest reaches at
	// 10.0.2.100:1883, and an operator key.
	broker := mosquittotest.Start(t)
	d.setupOperator()
	testutil.WriteFile(t, filepath.Join(d.work, "agent.yaml"), "brokers: [tcp://10.0.2.100:1883]\ndevice-id: vm1\n")
	d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "-o", "base.img", "--key", "root", "--revision", "1",
		"--agent-config", "agent.yaml")
	d.ok("image", "initrd", "--modules", modules, "--paddock", binary, "--trust", "root.asc", "-o", "initrd.img",
		"--module", "i2c_dev", "--module", "xhci_pci", "--module", "ftdi_sio", "--module", "virtio_net")
	d.ok("image", "build", "--gadget", gadgetDir, "--base", "base.img", "--kernel", vmlinuz, "--initrd", "initrd.img",
		"--arch", "amd64", "--gadget-package", "gadget.pdk", "--app", "escape.pdk", "-o", "disk.img", "-q")
	files := filepath.Join(d.work, "files.tar")
	writeTar(t, files, map[string][]byte{
		"t.sh":        []byte(hardwareScript),
		"i2c-stub.ko": []byte(testutil.ReadFile(t, filepath.Join(modules, "kernel/drivers/i2c/i2c-stub.ko"))),
	})

	serial := filepath.Join(d.work, "ttyS1.out")
	usbOut := filepath.Join(d.work, "usb.out")
	sock := filepath.Join(d.work, "qmp.sock")
	c, err := qemu.WithCommand(qemu.Config{
		Kernel: vmlinux, Initrd: filepath.Join(d.work, "initrd.img"),
		Disks: []string{filepath.Join(d.work, "disk.img")}, ReadOnlyDisks: []string{files},
		Serials: []string{serial}, QMP: sock, USB: true, Timeout: 8 * time.Minute,
		GuestForwards: []qemu.GuestForward{{GuestPort: 1883, HostPort: broker.Port()}},
	}, "tar -xf /dev/vdb -C /tmp && sh /tmp/t.sh")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	v, err := qemu.Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		v.PowerCut()
		v.Wait()
	}()
	q, err := qemu.DialQMP(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	// The serial port through the fleet: the operator's signed command
	// over mosquitto, while the app runs.
	if err := v.Expect(ctx, "serial: connect"); err != nil {
		t.Fatalf("%v\n%s", err, v.Output())
	}
	testutil.WaitFor(t, "vm1 online in 'fleet devices'", 90*time.Second, func() bool {
		r := d.paddock("fleet", "devices", "--broker", broker.URL(), "--json")
		return strings.Contains(r.stdout, `"online": true`) || strings.Contains(r.stdout, `"online":true`)
	})
	fleet := func(args ...string) {
		t.Helper()
		begin := time.Now()
		r := d.paddock(append([]string{"fleet", "send", "--broker", broker.URL(), "--key", "ops", "--delegation", "ops.delegation", "--device", "vm1"}, args...)...)
		if r.code != 0 {
			t.Fatalf("fleet send %s: exit code %d\n%s%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, v.Output())
		}
		t.Logf("fleet send %s: done in %v", strings.Join(args, " "), time.Since(begin))
	}
	fleet("connect", "escape:serial-port", "serial1")
	if err := v.Expect(ctx, "serial: disconnect"); err != nil {
		t.Fatalf("%v\n%s", err, v.Output())
	}
	fleet("disconnect", "escape:serial-port")
	if err := v.Expect(ctx, "usb: plug"); err != nil {
		t.Fatalf("%v\n%s", err, v.Output())
	}
	if err := q.AddFileChardev(ctx, "usb0", usbOut); err != nil {
		t.Fatal(err)
	}
	plugged := time.Now()
	if err := q.DeviceAdd(ctx, "usb-serial", "adapter0", map[string]any{"chardev": "usb0", "bus": "xhci.0"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Expect(ctx, "usb: unplug"); err != nil {
		t.Fatalf("%v\n%s", err, v.Output())
	}
	t.Logf("from device_add to the app's write done: %v", time.Since(plugged))
	if err := q.DeviceDel(ctx, "adapter0"); err != nil {
		t.Fatal(err)
	}
	if err := v.Expect(ctx, "paddock: cmd end"); err != nil {
		t.Fatalf("%v\n%s", err, v.Output())
	}
	v.Wait()
	out := v.Output()
	t.Logf("boot and checks: %v; the guest printed:\n%s", time.Since(start), out)

	answers := map[string]*regexp.Regexp{
		"serial-before":       regexp.MustCompile(`: (EACCES|EPERM)$`),
		"i2c-before":          regexp.MustCompile(`: (EACCES|EPERM)$`),
		"serial-connected":    regexp.MustCompile(`hold: allowed$`),
		"serial-write":        regexp.MustCompile(`write: allowed$`),
		"i2c-connected":       regexp.MustCompile(`open: allowed$`),
		"label":               regexp.MustCompile(`^paddock\.escape\.escape \(enforce\)$`),
		"serial-holder":       regexp.MustCompile(`^gone$`),
		"serial-disconnected": regexp.MustCompile(`: (EACCES|EPERM)$`),
		"i2c-still":           regexp.MustCompile(`open: allowed$`),
		"i2c-disconnected":    regexp.MustCompile(`: (EACCES|EPERM)$`),
		"usb-plugged":         regexp.MustCompile(`hold: allowed$`),
		"usb-write":           regexp.MustCompile(`write: allowed$`),
		"usb-policy":          regexp.MustCompile(`^0$`),
		"usb-unplugged":       regexp.MustCompile(`: ENOENT$`),
	}
	for tag, want := range answers {
		got := tagged(out, tag)
		if !want.MatchString(got) {
			t.Errorf("%s: got %q, want /%s/", tag, got, want)
		}
	}
	if got := testutil.ReadFile(t, serial); !strings.Contains(got, "hello-from-escape") {
		t.Errorf("the host's end of ttyS1 got %q, want the app's line", got)
	}
	if got := testutil.ReadFile(t, usbOut); !strings.Contains(got, "hello-over-usb") {
		t.Errorf("the host's end of the USB adapter got %q, want the app's line", got)
	}
}

// tagged returns what follows "TAG: " on the line of the guest's output
// that starts with it.
func tagged(out, tag string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if rest, ok := strings.CutPrefix(line, tag+": "); ok {
			return rest
		}
	}
	return ""
}

// writeTar writes files into a tar archive at path, for a guest to read
// from a disk.
func writeTar(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for name, data := range files {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		w.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
