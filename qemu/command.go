// Package qemu boots paddock images in QEMU (TCG, no KVM) for tests and for
// developers ('paddock vm run'): it builds the command line, reads the serial
// console, speaks the console protocol of package boot (see boot/doc.go) and
// cuts the power.
//
// The guest's network, when there is one, is QEMU's user-mode network with
// restrict=on: the guest reaches only the loopback ports named by
// GuestForwards, and the host reaches the guest only through Forwards on
// 127.0.0.1.
package qemu

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Arch is a guest architecture, spelled as GOARCH.
type Arch string

// The architectures paddock boots.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// Forward is a hostfwd rule: connections to 127.0.0.1:HostPort on the host
// reach the guest's GuestPort.
type Forward struct {
	HostPort, GuestPort int
}

// GuestForward is a guestfwd rule: connections from the guest to
// 10.0.2.100:GuestPort reach 127.0.0.1:HostPort on the host. QEMU carries
// them over one connection to the host port (a chardev), connected again a
// second after the host closes it: one guest connection at a time, and a
// guest connection the host cut is not closed in the guest (its client's
// own timeout ends it).
type GuestForward struct {
	GuestPort, HostPort int
}

// GuestForwardAddr is the address in the guest's network that GuestForwards
// listen on.
const GuestForwardAddr = "10.0.2.100"

// Config describes a virtual machine.
type Config struct {
	Arch   Arch   // default amd64
	Kernel string // vmlinux (amd64, PVH direct boot, fastest) or vmlinuz
	Initrd string // optional
	Append string // extra kernel arguments, after the console ones

	Disks         []string // raw images, attached as virtio disks in this order
	ReadOnlyDisks []string // raw images, virtio and read-only, after Disks

	MemoryMB int // default 512
	CPUs     int // default 1

	Forwards      []Forward      // host 127.0.0.1:port -> guest port
	GuestForwards []GuestForward // guest 10.0.2.100:port -> host 127.0.0.1:port

	// Watchdog adds the i6300esb watchdog (amd64): when the guest arms
	// it and stops petting it, QEMU resets the machine, which -no-reboot
	// turns into QEMU exiting.
	Watchdog bool
	// Serials are host files that the guest's next serial ports write to,
	// in order: ttyS1, ttyS2... (amd64 only; the first is the console).
	Serials []string
	// QMP, if set, is the path of a unix socket on which QEMU answers QMP
	// (DialQMP), for plugging devices in and out at run time.
	QMP string
	// USB adds a USB 3 (xHCI) controller, for USB devices plugged over QMP.
	USB bool

	// Console, if set, gets a copy of everything the guest prints.
	Console io.Writer
	// Stdin, if set, is typed into the guest's serial console (an
	// interactive session). When it is a terminal, QEMU puts it in raw mode
	// for as long as it runs.
	Stdin io.Reader
	// Timeout, if set, bounds the VM's life: QEMU is killed after it.
	Timeout time.Duration
}

// Kernel arguments for the serial console of each architecture. panic=-1
// reboots at once on a kernel panic, which -no-reboot turns into QEMU
// exiting: a guest whose init dies ends instead of hanging. no_timer_check
// (amd64) skips the kernel's check that the timer interrupt reaches the
// IO-APIC, which an emulated CPU on a loaded host can fail: "Kernel
// panic - not syncing: IO-APIC + timer doesn't work!" at 0.08 s, seen once
// in 12 boots at a load of 18.
var consoleArgs = map[Arch]string{
	AMD64: "console=ttyS0 quiet panic=-1 no_timer_check",
	ARM64: "console=ttyAMA0 quiet panic=-1",
}

// Command returns the QEMU command line for c; it does not start it. Its
// Stdin, Stdout and Stderr are unset.
func Command(c Config) (*exec.Cmd, error) {
	args, err := commandArgs(c)
	if err != nil {
		return nil, err
	}
	return exec.Command(args[0], args[1:]...), nil
}

func commandArgs(c Config) ([]string, error) {
	if c.Arch == "" {
		c.Arch = AMD64
	}
	if c.Kernel == "" {
		return nil, errors.New("cannot build qemu command line: no kernel given")
	}
	var args []string
	switch c.Arch {
	case AMD64:
		args = []string{"qemu-system-x86_64", "-accel", "tcg", "-M", "q35"}
	case ARM64:
		args = []string{"qemu-system-aarch64", "-accel", "tcg", "-M", "virt", "-cpu", "cortex-a57"}
	default:
		return nil, fmt.Errorf("cannot boot architecture %q (use amd64 or arm64)", c.Arch)
	}
	mem, cpus := c.MemoryMB, c.CPUs
	if mem == 0 {
		mem = 512
	}
	if cpus == 0 {
		cpus = 1
	}
	if mem < 0 || cpus < 0 {
		return nil, fmt.Errorf("cannot boot with %d MiB and %d CPUs", mem, cpus)
	}
	args = append(args, "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-serial", "stdio", "-display", "none", "-no-reboot",
		"-kernel", c.Kernel)
	if c.Initrd != "" {
		args = append(args, "-initrd", c.Initrd)
	}
	args = append(args, "-append", strings.TrimSpace(consoleArgs[c.Arch]+" "+c.Append))
	if c.Watchdog {
		if c.Arch != AMD64 {
			return nil, fmt.Errorf("cannot add a watchdog to %s: the i6300esb is a PCI device of the amd64 machine", c.Arch)
		}
		args = append(args, "-device", "i6300esb")
	}
	for _, d := range c.Disks {
		args = append(args, "-drive", driveArg(d, false))
	}
	for _, d := range c.ReadOnlyDisks {
		args = append(args, "-drive", driveArg(d, true))
	}
	dev, err := deviceArgs(c)
	if err != nil {
		return nil, err
	}
	args = append(args, dev...)
	net, err := netArgs(c)
	if err != nil {
		return nil, err
	}
	return append(args, net...), nil
}

// deviceArgs returns the extra serial ports, the QMP socket and the USB
// controller.
func deviceArgs(c Config) ([]string, error) {
	var args []string
	if len(c.Serials) > 0 && c.Arch == ARM64 {
		return nil, errors.New("cannot add serial ports: QEMU's arm64 virt machine has one")
	}
	for i, f := range c.Serials {
		id := fmt.Sprintf("serial%d", i+1)
		args = append(args, "-chardev", "file,id="+id+",path="+escapeOpt(f), "-serial", "chardev:"+id)
	}
	if c.QMP != "" {
		args = append(args, "-qmp", "unix:"+escapeOpt(c.QMP)+",server=on,wait=off")
	}
	if c.USB {
		args = append(args, "-device", "qemu-xhci,id=xhci")
	}
	return args, nil
}

// escapeOpt doubles the commas of a value in QEMU's option syntax.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// driveArg escapes commas in path, which QEMU's option syntax doubles.
func driveArg(path string, readOnly bool) string {
	s := "file=" + strings.ReplaceAll(path, ",", ",,") + ",if=virtio,format=raw"
	if readOnly {
		s += ",readonly=on"
	}
	return s
}

// netArgs returns the user-mode network, only when there is a rule: a guest
// without rules has no network device at all.
func netArgs(c Config) ([]string, error) {
	if len(c.Forwards) == 0 && len(c.GuestForwards) == 0 {
		return nil, nil
	}
	netdev := "user,id=n0,restrict=on"
	for _, f := range c.Forwards {
		if !validPort(f.HostPort) || !validPort(f.GuestPort) {
			return nil, fmt.Errorf("cannot forward port %d to %d: ports are 1 to 65535", f.HostPort, f.GuestPort)
		}
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
	}
	for _, f := range c.GuestForwards {
		if !validPort(f.HostPort) || !validPort(f.GuestPort) {
			return nil, fmt.Errorf("cannot forward guest port %d to %d: ports are 1 to 65535", f.GuestPort, f.HostPort)
		}
		// QEMU connects a guestfwd's chardev once, at its start, and
		// carries every guest connection to the port over it: a host
		// server that closes it (fleet serve drops a connection with no
		// request after 10 s) cut the guest off for good. reconnect=1 makes
		// QEMU connect again a second after.
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-tcp:127.0.0.1:%d,,reconnect=1", GuestForwardAddr, f.GuestPort, f.HostPort)
	}
	dev := "virtio-net-pci,netdev=n0"
	if c.Arch == ARM64 {
		dev = "virtio-net-device,netdev=n0"
	}
	return []string{"-netdev", netdev, "-device", dev}, nil
}

func validPort(p int) bool { return p > 0 && p < 65536 }

// ShellQuote returns args as one line a POSIX shell reads back as args.
func ShellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+/.,:@%") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
