package qemu

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"paddock.dev/paddock/internal/cli"
)

const vmUsage = `
Usage: paddock vm run DISK.img [--arch amd64] [--kernel K] [--initrd I] [--mem 512]
         [--cpus 1] [--forward HOSTPORT:GUESTPORT]... [--guest-forward GUESTPORT:HOSTPORT]...
         [--disk FILE]... [--disk-ro FILE]... [--shell] [--print] [-v] [-- 'COMMAND']

Boots a paddock disk image in QEMU (TCG). Without COMMAND the terminal is
the guest's serial console until the guest powers off (Ctrl-C ends QEMU);
with --shell, a root shell on that console once the agent is ready (try
'paddock list'), and the guest powers off when the shell exits.
With COMMAND the guest runs it once the agent is ready, prints its output and
powers off; paddock exits with the command's exit code.

More disks follow the image as /dev/vdb, /dev/vdc...: --disk ones writable,
then --disk-ro ones read-only (a package file, say, to install from).

The kernel and initramfs default to the files next to the image
(disk.img -> disk.vmlinux or disk.vmlinuz, and disk.initrd.img), else to
$PADDOCK_CACHE/kernels/ARCH/boot/vmlinux-KVER (amd64) or vmlinuz-KVER and
$PADDOCK_CACHE/kernels/ARCH/initrd.img. PADDOCK_CACHE defaults to the .cache
folder of the paddock checkout ('make deps' fetches the kernel there).

The guest has a network only with --forward or --guest-forward: QEMU's
user-mode network, restricted to the forwarded ports on 127.0.0.1 (the
guest reaches a --guest-forward at 10.0.2.100:GUESTPORT).
`

// Run runs 'paddock vm ARGS'; its one subcommand is run.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.UsageError("vm takes a subcommand: run")
	}
	switch args[0] {
	case "run":
		return vmRun(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, strings.TrimSpace(vmUsage))
		return nil
	}
	return cli.UsageError("unknown vm subcommand %q (vm takes: run)", args[0])
}

func vmRun(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("vm run", vmUsage, stdout)
	arch := fs.String("arch", string(AMD64), "guest architecture: amd64 or arm64")
	kernel := fs.String("kernel", "", "kernel to boot (default: next to the image, or the cached one)")
	initrd := fs.String("initrd", "", "initramfs (default: next to the image, or the cached one)")
	mem := fs.Int("mem", 512, "memory in MiB")
	cpus := fs.Int("cpus", 1, "virtual CPUs")
	var fwd forwardFlag
	var gfwd guestForwardFlag
	fs.Var(&fwd, "forward", "forward 127.0.0.1:HOSTPORT to the guest's GUESTPORT (repeatable)")
	fs.Var(&gfwd, "guest-forward", "forward the guest's 10.0.2.100:GUESTPORT to 127.0.0.1:HOSTPORT (repeatable)")
	var extra, extraRO listFlag
	fs.Var(&extra, "disk", "another disk `FILE`, writable (repeatable)")
	fs.Var(&extraRO, "disk-ro", "another disk `FILE`, read-only (repeatable)")
	shell := fs.Bool("shell", false, "a root shell on the console once the agent is ready")
	printOnly := fs.Bool("print", false, "print the QEMU command line instead of running it")
	verbose := fs.Bool("v", false, "with COMMAND: copy the whole console to stderr")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cli.UsageError("vm run needs a disk image")
	}
	disk, command := pos[0], strings.Join(pos[1:], " ")
	if _, err := os.Stat(disk); err != nil {
		return fmt.Errorf("cannot boot %s: %w", disk, err)
	}
	c := Config{Arch: Arch(*arch), Disks: append([]string{disk}, extra...), ReadOnlyDisks: extraRO,
		MemoryMB: *mem, CPUs: *cpus, Forwards: fwd, GuestForwards: gfwd}
	if c.Kernel, c.Initrd, err = bootFiles(c.Arch, disk, *kernel, *initrd); err != nil {
		return err
	}
	if *printOnly {
		return printCommand(c, command, stdout)
	}
	if command == "" {
		if *shell {
			// The shell talks to the console itself, not through init's pipe.
			if c, err = withCommand(c, consoleShell); err != nil {
				return err
			}
		}
		return interactive(c, stdout)
	}
	if *verbose {
		c.Console = stderr
	}
	out, code, err := RunCommand(context.Background(), c, command)
	if out != "" {
		fmt.Fprintln(stdout, out)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.ExitCode(code)
	}
	return nil
}

func printCommand(c Config, command string, stdout io.Writer) error {
	if command != "" {
		var err error
		if c, err = withCommand(c, command); err != nil {
			return err
		}
	}
	cmd, err := Command(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, ShellQuote(cmd.Args))
	return err
}

// interactive connects the terminal to the guest's serial console until
// QEMU exits.
func interactive(c Config, stdout io.Writer) error {
	c.Stdin, c.Console = os.Stdin, stdout
	// QEMU gets the terminal's Ctrl-C and exits by itself; this process must
	// outlive it to report how it ended (and QEMU restores the terminal).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	v, err := Start(context.Background(), c)
	if err != nil {
		return err
	}
	return v.Wait()
}

// forwardFlag collects --forward HOSTPORT:GUESTPORT.
type forwardFlag []Forward

func (f *forwardFlag) String() string { return "" }

func (f *forwardFlag) Set(s string) error {
	a, b, err := parsePorts(s)
	if err != nil {
		return err
	}
	*f = append(*f, Forward{HostPort: a, GuestPort: b})
	return nil
}

// guestForwardFlag collects --guest-forward GUESTPORT:HOSTPORT.
type guestForwardFlag []GuestForward

func (f *guestForwardFlag) String() string { return "" }

func (f *guestForwardFlag) Set(s string) error {
	a, b, err := parsePorts(s)
	if err != nil {
		return err
	}
	*f = append(*f, GuestForward{GuestPort: a, HostPort: b})
	return nil
}

var errPorts = errors.New("want PORT:PORT, ports 1 to 65535")

func parsePorts(s string) (int, int, error) {
	x, y, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errPorts
	}
	a, err1 := strconv.Atoi(x)
	b, err2 := strconv.Atoi(y)
	if err1 != nil || err2 != nil || !validPort(a) || !validPort(b) {
		return 0, 0, errPorts
	}
	return a, b, nil
}

var _ flag.Value = (*forwardFlag)(nil)

// consoleShell is the paddock.cmd of --shell.
const consoleShell = "exec /bin/sh -i </dev/console >/dev/console 2>&1"

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
