package images

import (
	"fmt"
	"io"
	"os"
	"time"

	"paddock.dev/paddock/internal/cli"
)

const initrdUsage = `usage: paddock image initrd --modules DIR [--module NAME]... [--paddock BIN] [--trust KEY.asc]... [--keep-module-signatures] -o initrd.img

Builds the initramfs of a device: the static paddock binary as /init (the
boot stage, 'paddock init') and the kernel modules the boot needs, with
their dependencies, from the kernel's lib/modules/KVER directory
(scripts/kernel.sh prints it as modules=). --module adds a module to load
at boot, for hardware the board has: a driver must be loaded before its
device appears, since a device runs no udev to load it then (the QEMU
tests add i2c_dev, xhci_pci and ftdi_sio).

The modules lose their signatures, which the kernel would otherwise hash
on every boot (a tenth of a second under QEMU's TCG); they are no more
trusted than the unsigned /init that loads them. The kernel then notes
itself tainted ('E') once. A kernel that enforces module signatures
(module.sig_enforce=1, or lockdown under UEFI Secure Boot) refuses
unsigned modules: build its initramfs with --keep-module-signatures.

With --trust, the initramfs carries the device's trusted root keys
(etc/paddock/trusted) and boots only a verified base: a slot whose signed
base-revision assertion checks against them, mounted through dm-verity
with the assertion's root hash. Without it the base is mounted unchecked
(a development image), and the boot says so.`

// Initrd is 'paddock image initrd'.
func Initrd(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("paddock image initrd", initrdUsage, stderr)
	var o InitramfsOptions
	fs.StringVar(&o.ModulesDir, "modules", "", "the kernel's lib/modules/KVER `DIR`")
	fs.StringVar(&o.Paddock, "paddock", "", "the static paddock `BIN`ary that becomes /init (default: the running one)")
	fs.BoolVar(&o.KeepModuleSignatures, "keep-module-signatures", false, "keep the modules' signatures (for a kernel that enforces them)")
	fs.StringVar(&o.Output, "o", "", "the initramfs `FILE` to write")
	fs.Func("module", "another kernel module `NAME` to load at boot, with its dependencies (repeatable)", func(v string) error {
		if o.Modules == nil {
			o.Modules = append([]string(nil), DefaultModules...)
		}
		o.Modules = append(o.Modules, v)
		return nil
	})
	fs.Func("trust", "a trusted root `KEY.asc` the base's assertion must check against (repeatable)", func(v string) error {
		o.TrustedKeys = append(o.TrustedKeys, v)
		return nil
	})
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || o.Output == "" {
		return cli.UsageError("image initrd takes -o FILE and no arguments")
	}
	if o.Paddock == "" {
		if o.Paddock, err = os.Executable(); err != nil {
			return err
		}
	}
	o.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	start := time.Now()
	if err := BuildInitramfs(o); err != nil {
		return err
	}
	fi, err := os.Stat(o.Output)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes) in %s\n", o.Output, fi.Size(), time.Since(start).Round(time.Millisecond))
	return nil
}

const imageUsage = `usage: paddock image base|initrd|build ...

Builds what a device boots: 'base' the read-only root filesystem, 'initrd'
the initramfs with the boot stage, 'build' the whole disk image laid out
from a gadget. 'paddock image COMMAND --help' tells more.`

// Run dispatches 'paddock image SUBCOMMAND'.
func Run(args []string, stdout, stderr io.Writer) error {
	sub := map[string]func([]string, io.Writer, io.Writer) error{"base": Base, "initrd": Initrd, "build": Build}
	if len(args) > 0 && sub[args[0]] != nil {
		return sub[args[0]](args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, imageUsage)
		return nil
	}
	return cli.UsageError("image takes a subcommand: base, initrd or build")
}
