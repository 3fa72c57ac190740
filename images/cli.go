package images

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"paddock.dev/paddock/internal/cli"
	otacli "paddock.dev/paddock/ota/cli"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

const baseUsage = `usage: paddock image base --arch amd64|arm64 [--paddock BIN] [--trust KEY.asc]... -o base.img
                          [--agent-config agent.yaml] [--key NAME --revision N [--delegation FILE]] [--json]

Builds a base: the read-only root filesystem of a device, as a slot image
that is written raw to a base partition (base-a or base-b). It holds the
paddock binary (a static build; by default the running one), busybox,
apparmor_parser and its libraries, the trusted root keys, and the mount
points the boot stage uses.

The slot image is a SquashFS, zero-padded to whole 4096-byte blocks, then
its dm-verity hash tree (format 1, sha256, 4096-byte blocks, no
superblock), so that a device mounts it through dm-verity and the kernel
checks every block it reads.

With --key, it also writes base.img.assert: a base-revision assertion
signed by your key NAME, stating the base's name, version, revision N,
architecture, the image's size and sha256, the sha256 of each chunk (for
updates that resume and copy unchanged chunks), and the hash tree's root
hash and salt. Devices update to a base only with it ('paddock base update',
'paddock fleet send DEVICE base-update URL'), and only when its signature
leads to a root key they trust, its revision is not lower than the running
base's and its architecture is theirs.

Examples:
    paddock image base --arch amd64 --trust root.asc -o base.img --key acme-root --revision 1
    paddock image base --arch arm64 --paddock bin/paddock-arm64 -o base.img --key acme-ci --revision 7 --delegation ci.assert`

// Base is 'paddock image base'.
func Base(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("paddock image base", baseUsage, stderr)
	var o BaseOptions
	var trustKeys listFlag
	var asJSON bool
	var sign otacli.BaseSigning
	fs.StringVar(&o.Arch, "arch", "", "architecture: amd64 or arm64")
	fs.StringVar(&o.Paddock, "paddock", "", "static paddock binary (default: this one)")
	fs.StringVar(&o.Busybox, "busybox", "/bin/busybox", "static busybox for the architecture")
	fs.StringVar(&o.ApparmorParser, "apparmor-parser", "/sbin/apparmor_parser", "apparmor_parser's path under --sysroot")
	fs.StringVar(&o.Sysroot, "sysroot", "/", "where apparmor_parser and its libraries are: / for the host's architecture, or a `DIR` with the architecture's Debian packages unpacked (apparmor, libapparmor1, libc6)")
	fs.BoolVar(&o.NoApparmor, "no-apparmor", false, "leave apparmor_parser out")
	fs.Var(&trustKeys, "trust", "armored public root key to trust (repeatable)")
	fs.StringVar(&o.Name, "name", "paddock-base", "package name of the base")
	fs.StringVar(&o.Version, "version", "1", "version of the base")
	fs.StringVar(&o.Hostname, "hostname", "paddock", "the device's /etc/hostname")
	fs.StringVar(&o.AgentConfig, "agent-config", "", "install `FILE` as the device's /etc/paddock/agent.yaml (its fleet link: brokers, device-id, groups)")
	fs.StringVar(&o.Output, "o", "", "output slot image (required)")
	fs.StringVar(&sign.Key, "key", "", "sign the base with key `NAME` from your store, into OUTPUT.assert")
	fs.IntVar(&sign.Revision, "revision", 0, "the base's revision `N` (1 or more; with --key)")
	fs.StringVar(&sign.Delegation, "delegation", "", "include the delegation of the key in `FILE` (from 'paddock key delegate')")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("unexpected argument %q", pos[0])
	}
	if o.Arch == "" || o.Output == "" {
		return cli.UsageError("give --arch and -o")
	}
	if (sign.Key == "") != (sign.Revision == 0) {
		return cli.UsageError("give --key and --revision together, or neither")
	}
	if sign.Revision < 0 || (sign.Delegation != "" && sign.Key == "") {
		return cli.UsageError("--revision takes N of 1 or more, --delegation goes with --key")
	}
	if o.Paddock == "" {
		if o.Paddock, err = os.Executable(); err != nil {
			return err
		}
	}
	o.TrustedKeys = trustKeys
	start := time.Now()
	b, err := BuildBase(o)
	if err != nil {
		return err
	}
	res := map[string]any{"path": o.Output, "name": b.Name, "version": b.Version, "arch": o.Arch,
		"size": b.Image.Size, "sha256": b.Image.SHA256, "verity-root-hash": b.Image.RootHash,
		"verity-data-size": b.Image.DataSize, "chunk-size": b.Image.ChunkSize, "chunks": len(b.Image.Chunks)}
	if sign.Key != "" {
		out := o.Output + ".assert"
		signKey, err := otacli.SignBase(b.Revision(o.Arch), sign, out)
		if err != nil {
			return err
		}
		res["assertion"], res["revision"], res["sign-key"] = out, sign.Revision, signKey
	}
	took := time.Since(start).Round(time.Millisecond)
	if asJSON {
		res["seconds"] = took.Seconds()
		return cli.WriteJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s: base %s %s (%s), %s in %v, verity root %s\n", o.Output, b.Name, b.Version, o.Arch, humanBytes(b.Image.Size), took, b.Image.RootHash)
	if sign.Key != "" {
		fmt.Fprintf(stdout, "%s: base-revision %d signed with key %s\n", res["assertion"], sign.Revision, sign.Key)
	} else {
		fmt.Fprintf(stderr, "note: without --key and --revision, no base-revision is written: devices cannot update to this base\n")
	}
	return nil
}

const buildUsage = `usage: paddock image build --gadget DIR [--gadget-package GADGET.pdk] --base BASE.pdk --kernel KERNEL --initrd INITRD --arch ARCH [--app FILE.pdk]... -o disk.img

Builds a raw disk image from a gadget's volume: a GPT with the boot (FAT32:
the kernel and the initramfs), bootenv, base-a (the base), base-b and data
(ext4) partitions. Each --app is pre-installed in the data partition, after
its assertions (FILE.pdk.assert) are checked against the trusted keys
(--trust, or else the base's own), for the agent to adopt at first boot.
The gadget package (DIR packed with 'paddock pack' and signed) is
pre-installed the same way, first: the agent reads the board's hardware
slots from it, and its connections connect the seeded apps' plugs.

Example:
  paddock pack examples/gadget-amd64 -o pc.pdk && paddock sign pc.pdk --key pub --revision 1
  paddock image build --gadget examples/gadget-amd64 --gadget-package pc.pdk --base base.pdk \
      --kernel vmlinuz --initrd initrd.img --arch amd64 --app hello.pdk -o disk.img`

// Build is 'paddock image build'.
func Build(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("paddock image build", buildUsage, stderr)
	var o DiskOptions
	var apps, trustKeys listFlag
	var asJSON, quiet bool
	fs.StringVar(&o.Gadget, "gadget", "", "gadget directory (holding gadget.yaml)")
	fs.StringVar(&o.GadgetPackage, "gadget-package", "", "the gadget packed and signed from --gadget (FILE.pdk, FILE.pdk.assert beside it), installed on the device")
	fs.StringVar(&o.Base, "base", "", "base image (paddock image base)")
	fs.StringVar(&o.Kernel, "kernel", "", "kernel for the boot partition (vmlinuz)")
	fs.StringVar(&o.Initrd, "initrd", "", "initramfs for the boot partition")
	fs.StringVar(&o.Arch, "arch", "", "architecture: amd64 or arm64")
	fs.Var(&apps, "app", "package to pre-install, with FILE.assert next to it (repeatable)")
	fs.Var(&trustKeys, "trust", "armored root key to check apps against (repeatable; default: the base's keys)")
	fs.StringVar(&o.Output, "o", "", "output file (required)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&quiet, "q", false, "no progress on stderr")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.UsageError("unexpected argument %q", pos[0])
	}
	var missing []string
	for _, f := range []struct{ flag, val string }{{"--gadget", o.Gadget}, {"--base", o.Base},
		{"--kernel", o.Kernel}, {"--initrd", o.Initrd}, {"--arch", o.Arch}, {"-o", o.Output}} {
		if f.val == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return cli.UsageError("missing %s", strings.Join(missing, ", "))
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return cli.UsageError("unknown architecture %q (want amd64 or arm64)", o.Arch)
	}
	o.Apps, o.TrustedKeys = apps, trustKeys
	if !quiet {
		o.Progress = stderr
	}
	start := time.Now()
	if err := BuildDisk(o); err != nil {
		return err
	}
	fi, err := os.Stat(o.Output)
	if err != nil {
		return err
	}
	if asJSON {
		return cli.WriteJSON(stdout, map[string]any{"path": o.Output, "size": fi.Size(), "apps": len(apps),
			"seconds": time.Since(start).Seconds()})
	}
	fmt.Fprintf(stdout, "%s: disk image, %s\n", o.Output, humanBytes(fi.Size()))
	return nil
}
