package images

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/baseupdate"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pack"
)

// BaseOptions says what goes into a base image.
type BaseOptions struct {
	Arch    string // amd64 or arm64: the binaries must be built for it
	Name    string // the base's package name; "paddock-base" when empty
	Version string // "1" when empty
	// Paddock is the static paddock binary, installed as /usr/bin/paddock.
	Paddock string
	// Busybox is a static busybox, installed as /bin/busybox with a link
	// in /bin for each applet; /bin/busybox when empty.
	Busybox string
	// ApparmorParser is installed as /sbin/apparmor_parser with the shared
	// libraries ldd names; /sbin/apparmor_parser when empty. NoApparmor
	// leaves it out.
	ApparmorParser string
	NoApparmor     bool
	// Sysroot is where ApparmorParser, its libraries and parser.conf are
	// found: "/" (the default) for the host's architecture, or a folder
	// with the image architecture's packages unpacked.
	Sysroot string
	// TrustedKeys are armored public keys (files) installed as the
	// device's trusted root keys in /etc/paddock/trusted/FINGERPRINT.asc.
	TrustedKeys []string
	Hostname    string // "paddock" when empty
	// AgentConfig, when set, is installed as /etc/paddock/agent.yaml:
	// the agent's fleet link (brokers, device id, groups).
	AgentConfig string
	// Output is the slot image: the SquashFS, zero-padded to whole 4096-byte
	// blocks, then its dm-verity hash tree (package ota/baseupdate).
	Output string
}

// BuiltBase is a base that BuildBase made.
type BuiltBase struct {
	*manifest.Manifest
	// Image describes the slot image at BaseOptions.Output.
	Image *baseupdate.Image
}

// Revision returns the base-revision of b for arch, unsigned and without
// its revision number.
func (b *BuiltBase) Revision(arch string) *assert.BaseRevision {
	r := b.Image.Revision()
	r.Name, r.Version, r.Arch = b.Name, b.Version, arch
	return r
}

// MarkerFile is present in every base image.
const MarkerFile = "etc/paddock-base"

// mountPoints are the empty directories of a base, where init and the
// agent mount things.
var mountPoints = []string{"proc", "sys", "dev", "run", "tmp", "data", dirs.LibRel, "apps", "boot", "mnt"}

// noApplets are busybox applets that get no link: PID 1 is paddock.
var noApplets = []string{"paddock", "init", "linuxrc"}

// BuildBase writes a base's slot image: a SquashFS root filesystem (built
// reproducibly with mksquashfs, like packages) holding /usr/bin/paddock,
// busybox and its applet links in /bin, apparmor_parser and its libraries,
// the trusted root keys, a minimal /etc, empty mount points and
// meta/app.yaml of type base; padded to whole blocks and followed by its
// dm-verity hash tree. It returns the base's manifest and what describes
// the image.
func BuildBase(opts BaseOptions) (*BuiltBase, error) {
	tree, err := os.MkdirTemp("", "paddock-base-")
	if err != nil {
		return nil, fmt.Errorf("cannot build base: %w", err)
	}
	defer os.RemoveAll(tree)
	m, err := stageBase(tree, &opts)
	if err != nil {
		return nil, fmt.Errorf("cannot build base: %w", err)
	}
	squashfs := opts.Output + ".squashfs"
	defer os.Remove(squashfs)
	if err := mksquashfs(tree, squashfs); err != nil {
		return nil, fmt.Errorf("cannot build base: %w", err)
	}
	img, err := baseupdate.MakeImage(squashfs, opts.Output)
	if err != nil {
		return nil, fmt.Errorf("cannot build base: %w", err)
	}
	return &BuiltBase{Manifest: m, Image: img}, nil
}

func (o *BaseOptions) defaults() {
	if o.Name == "" {
		o.Name = "paddock-base"
	}
	if o.Version == "" {
		o.Version = "1"
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	if o.Sysroot == "" {
		o.Sysroot = "/"
	}
	if o.ApparmorParser == "" {
		o.ApparmorParser = "/sbin/apparmor_parser"
	}
	if o.Hostname == "" {
		o.Hostname = "paddock"
	}
}

// stageBase lays out the base's tree in dir.
func stageBase(dir string, o *BaseOptions) (*manifest.Manifest, error) {
	o.defaults()
	machine, ok := elfMachines[o.Arch]
	if !ok {
		return nil, fmt.Errorf("unknown architecture %q (want amd64 or arm64)", o.Arch)
	}
	if o.Paddock == "" {
		return nil, fmt.Errorf("no paddock binary given")
	}
	for _, d := range append([]string{"bin", "sbin", "usr/bin", "etc/paddock/trusted", "meta"}, mountPoints...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The tree's root comes from MkdirTemp (0700), /tmp is sticky.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return nil, err
	}
	if err := installBinary(o.Paddock, filepath.Join(dir, "usr/bin/paddock"), machine); err != nil {
		return nil, err
	}
	if err := installBusybox(dir, o.Busybox, machine); err != nil {
		return nil, err
	}
	if !o.NoApparmor {
		if err := installApparmor(dir, o.ApparmorParser, o.Sysroot, machine); err != nil {
			return nil, err
		}
	}
	if err := installKeys(dir, o.TrustedKeys); err != nil {
		return nil, err
	}
	if o.AgentConfig != "" {
		if err := copyFile(o.AgentConfig, filepath.Join(dir, "etc/paddock/agent.yaml"), 0o644); err != nil {
			return nil, fmt.Errorf("agent config: %w", err)
		}
	}
	return writeBaseEtc(dir, o)
}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// installBinary copies an executable after checking it is an ELF file for
// the machine, so an amd64 busybox never lands in an arm64 base.
func installBinary(src, dst string, machine elf.Machine) error {
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("%s: %w (want an ELF executable)", src, err)
	}
	m := f.Machine
	f.Close()
	if m != machine {
		return fmt.Errorf("%s is built for %v, not %v (give a binary for the image's architecture)", src, m, machine)
	}
	return copyFile(src, dst, 0o755)
}

func copyFile(src, dst string, perm os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, perm)
}

// installBusybox installs busybox in /bin and a relative link to it for
// each applet it lists (or a basic set when it cannot run here, as a
// busybox of another architecture cannot).
func installBusybox(dir, busybox string, machine elf.Machine) error {
	if err := installBinary(busybox, filepath.Join(dir, "bin/busybox"), machine); err != nil {
		return err
	}
	applets := basicApplets
	if out, err := exec.Command(busybox, "--list").Output(); err == nil {
		applets = strings.Fields(string(out))
	}
	for _, a := range applets {
		if slices.Contains(noApplets, a) || a == "busybox" || strings.ContainsRune(a, '/') {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

var basicApplets = strings.Fields(`sh ash ls cat cp mv rm ln mkdir rmdir mount umount echo printf test [ grep sed
	awk head tail wc sort uniq cut tr find xargs ps kill sleep dmesg df du free chmod chown stat touch date env
	id uname hostname ip ifconfig ping wget vi less poweroff reboot sync true false md5sum sha256sum tar gzip`)

// installApparmor installs apparmor_parser in /sbin with the shared
// libraries it needs, at their paths, and parser.conf with the features
// file it names. All come from sysroot: "/" for the host's architecture, or
// a folder where Debian's packages of the image's architecture were
// unpacked (apparmor, libapparmor1, libc6).
func installApparmor(dir, parser, sysroot string, machine elf.Machine) error {
	if err := installBinary(filepath.Join(sysroot, parser), filepath.Join(dir, "sbin/apparmor_parser"), machine); err != nil {
		return fmt.Errorf("%w (or build the base without AppArmor)", err)
	}
	libs, err := sharedLibs(parser, sysroot)
	if err != nil {
		return fmt.Errorf("cannot find the libraries of apparmor_parser: %w", err)
	}
	for _, lib := range libs {
		if err := copyFile(filepath.Join(sysroot, lib), filepath.Join(dir, lib), 0o755); err != nil {
			return fmt.Errorf("cannot copy library of apparmor_parser: %w", err)
		}
	}
	conf, err := os.ReadFile(filepath.Join(sysroot, parserConf))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := copyFile(filepath.Join(sysroot, parserConf), filepath.Join(dir, parserConf), 0o644); err != nil {
		return err
	}
	// The parser reads the feature set it compiles for from the file
	// parser.conf names (Debian: /usr/share/apparmor-features/features).
	for _, m := range featuresRe.FindAllStringSubmatch(string(conf), -1) {
		if err := copyFile(filepath.Join(sysroot, m[1]), filepath.Join(dir, m[1]), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

const parserConf = "/etc/apparmor/parser.conf"

var featuresRe = regexp.MustCompile(`(?m)^\s*policy-features=(/\S+)\s*$`)

// installKeys checks each armored key and installs it as FINGERPRINT.asc.
func installKeys(dir string, files []string) error {
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		key, err := keys.ParsePublicKey(data)
		if err != nil {
			return fmt.Errorf("trusted key %s: %w", file, err)
		}
		armored, err := key.Armored()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "etc/paddock/trusted", key.Fingerprint()+".asc"), armored, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeBaseEtc writes /etc and meta/app.yaml, and checks the manifest.
func writeBaseEtc(dir string, o *BaseOptions) (*manifest.Manifest, error) {
	app := fmt.Sprintf("name: %s\nversion: %q\ntype: base\nsummary: paddock base for %s\n", o.Name, o.Version, o.Arch)
	m, err := manifest.Parse([]byte(app), "meta/app.yaml")
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		MarkerFile:       fmt.Sprintf("name=%s\nversion=%s\narch=%s\n", o.Name, o.Version, o.Arch),
		"etc/hostname":   o.Hostname + "\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":      "root:x:0:\n",
		"etc/hosts":      "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		manifest.Path:    app,
		"etc/os-release": fmt.Sprintf("NAME=paddock\nID=paddock\nVERSION_ID=%s\nPRETTY_NAME=\"paddock %s (%s)\"\n", o.Version, o.Version, o.Arch),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o700); err != nil {
		return nil, err
	}
	// The base is read-only: the agent writes the name servers it gets by
	// DHCP or from agent.yaml on the /run tmpfs (dirs.ResolvConfRel).
	if err := os.Symlink("/"+dirs.ResolvConfRel, filepath.Join(dir, "etc/resolv.conf")); err != nil {
		return nil, err
	}
	return m, nil
}

// mksquashfs packs dir into out the way packages are packed (see
// ota/pack): reproducible, root-owned, without times or xattrs.
func mksquashfs(dir, out string) error {
	f, commit, discard, err := tempOutput(out)
	if err != nil {
		return err
	}
	args := []string{dir, f.Name(), "-noappend", "-quiet", "-no-progress",
		"-all-root", "-no-xattrs", "-mkfs-time", "0", "-all-time", "0"}
	args = append(args, pack.Compression...)
	cmd := exec.Command("mksquashfs", args...)
	// mksquashfs refuses SOURCE_DATE_EPOCH together with -mkfs-time.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		discard()
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%w (install squashfs-tools)", err)
		}
		return fmt.Errorf("mksquashfs: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := commit(); err != nil {
		discard()
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	return nil
}
