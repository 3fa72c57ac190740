package images

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/partition"
	"paddock.dev/paddock/ota/manifest"
	"paddock.dev/paddock/ota/pack"
)

// DiskOptions says what goes into a disk image.
type DiskOptions struct {
	Gadget string // the gadget directory, holding gadget.yaml
	// GadgetPackage, when set, is the signed gadget package (type gadget,
	// packed from Gadget, FILE.assert beside it) installed on the device,
	// first of the seeded packages: the agent reads its slots from it.
	GadgetPackage string
	Base          string // the base image, written into base-a
	Kernel        string // the kernel, copied to the boot partition as vmlinuz
	Initrd        string // the initramfs, copied to the boot partition as initrd.img
	Arch          string
	// Apps are packages pre-installed in the data partition, each with
	// its assertions in FILE.assert.
	Apps []string
	// TrustedKeys are the root keys (armored files) that the apps'
	// assertions are checked against; when empty, the base's own
	// /etc/paddock/trusted keys.
	TrustedKeys []string
	Output      string
	// Progress, when set, receives one line per step.
	Progress io.Writer

	// baseAssert is the bundle of Base+".assert", checked.
	baseAssert []byte
}

const (
	mib       = 1 << 20
	alignment = mib // partitions start on MiB boundaries
	sector    = 512
)

// BuildDisk writes a raw disk image laid out from the gadget's volume: a
// GPT with the structures as partitions, named as package boot expects;
// the kernel and the initramfs in the FAT32 boot partition; an initial
// boot environment (slot a); the base in base-a; base-b empty; an ext4
// data partition holding the agent's state directory, with the apps
// pre-installed and listed in paddock/seed.json.
func BuildDisk(opts DiskOptions) error {
	p := newProgress(opts.Progress)
	if opts.Output == "" {
		return fmt.Errorf("cannot build disk image: no output file given")
	}
	g, apps, err := checkDiskInputs(opts, p)
	if err != nil {
		return fmt.Errorf("cannot build disk image: %w", err)
	}
	if opts.baseAssert, err = checkBaseAssertion(opts, p); err != nil {
		return fmt.Errorf("cannot build disk image: %w", err)
	}
	vol := g.Volume()
	tmp := filepath.Join(filepath.Dir(opts.Output), fmt.Sprintf(".%s.tmp%d", filepath.Base(opts.Output), os.Getpid()))
	os.Remove(tmp)
	if err := writeDisk(tmp, vol, opts, apps, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot build disk image: %w", err)
	}
	if err := syncRename(tmp, opts.Output); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", opts.Output, err)
	}
	fmt.Fprintf(p.w, "%s: %s disk image in %v\n", opts.Output, humanBytes(diskSize(vol)), time.Since(p.start).Round(time.Millisecond))
	return nil
}

func syncRename(tmp, out string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// checkDiskInputs reads the gadget and checks the inputs before anything
// is written: the layout, the files, and each app's assertions.
func checkDiskInputs(opts DiskOptions, p *progress) (*gadget.Gadget, []*seedApp, error) {
	p.begin("gadget %s", opts.Gadget)
	g, err := gadget.ReadDir(opts.Gadget)
	if err != nil {
		return nil, nil, err
	}
	vol := g.Volume()
	if vol.Schema != gadget.SchemaGPT {
		return nil, nil, fmt.Errorf("%s: volume %s: schema %s is not supported yet (the boot stage finds partitions by GPT name; use gpt)", g.Filename(), vol.Name, vol.Schema)
	}
	for _, name := range partition.Required() {
		if vol.Structure(name) == nil {
			return nil, nil, fmt.Errorf("%s: volume %s has no %s structure (package boot needs %s)", g.Filename(), vol.Name, name, strings.Join(partition.Required(), ", "))
		}
	}
	for _, s := range vol.Structures {
		if s.Filesystem == gadget.FilesystemVFAT && s.Size == 64*mib {
			return nil, nil, fmt.Errorf("%s: structure %s: a vfat structure of exactly 64M comes out mis-sized (go-diskfs); use 63M or 65M", g.Filename(), s.Name)
		}
	}
	for _, file := range []string{opts.Base, opts.Kernel, opts.Initrd} {
		if _, err := os.Stat(file); err != nil {
			return nil, nil, err
		}
	}
	if fi, _ := os.Stat(opts.Base); fi.Size() > vol.Structure(partition.BaseA).Size {
		return nil, nil, fmt.Errorf("base %s is %s, larger than the %s structure (%s): make %s and %s larger in gadget.yaml", opts.Base, humanBytes(fi.Size()), partition.BaseA, humanBytes(vol.Structure(partition.BaseA).Size), partition.BaseA, partition.BaseB)
	}
	p.done(-1)
	pkgs := opts.Apps
	if opts.GadgetPackage != "" {
		pkgs = append([]string{opts.GadgetPackage}, pkgs...)
	}
	if len(pkgs) == 0 {
		return g, nil, nil
	}
	p.begin("verify %d package(s)", len(pkgs))
	trusted, err := trustedKeys(opts)
	if err != nil {
		return nil, nil, err
	}
	if len(trusted) == 0 {
		return nil, nil, fmt.Errorf("no trusted keys to check the apps against (give --trust KEY.asc, or build the base with --trust)")
	}
	var apps []*seedApp
	seen := make(map[string]bool)
	for i, pdk := range pkgs {
		a, err := checkApp(pdk, opts.Arch, trusted)
		if err != nil {
			return nil, nil, err
		}
		if err := checkGadgetPackage(pdk, a, i == 0 && opts.GadgetPackage != "", opts.Gadget); err != nil {
			return nil, nil, err
		}
		if seen[a.Name] {
			return nil, nil, fmt.Errorf("cannot seed %s: %s is given twice", pdk, a.Name)
		}
		seen[a.Name] = true
		apps = append(apps, a)
	}
	p.done(-1)
	return g, apps, nil
}

// layout returns the GPT partitions of vol: each starts on a MiB boundary,
// in the order of the structures, with GUIDs derived from the names so
// that the same gadget gives the same table.
func layout(vol *gadget.Volume) []*gpt.Partition {
	var parts []*gpt.Partition
	start := int64(alignment)
	for i, s := range vol.Structures {
		size := roundUp(s.Size, alignment)
		parts = append(parts, &gpt.Partition{
			Index: i + 1,
			Start: uint64(start / sector),
			End:   uint64((start+size)/sector - 1),
			Size:  uint64(size),
			Type:  gpt.Type(s.GPTType()),
			Name:  s.Name,
			GUID:  stableGUID(vol.Name, s.Name),
		})
		start += size
	}
	return parts
}

// diskSize is the size of the image: the structures, the MiB before them
// and one after (the backup GPT).
func diskSize(vol *gadget.Volume) int64 {
	size := int64(2 * alignment)
	for _, s := range vol.Structures {
		size += roundUp(s.Size, alignment)
	}
	return size
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// stableGUID makes a version-4-shaped GUID from a hash of names.
func stableGUID(names ...string) string {
	h := sha256.Sum256([]byte("paddock\x00" + strings.Join(names, "\x00")))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

func writeDisk(name string, vol *gadget.Volume, opts DiskOptions, apps []*seedApp, p *progress) error {
	p.begin("partition table (%d structures)", len(vol.Structures))
	d, err := diskfs.Create(name, diskSize(vol), diskfs.SectorSizeDefault)
	if err != nil {
		return err
	}
	defer d.Close()
	parts := layout(vol)
	table := &gpt.Table{Partitions: parts, LogicalSectorSize: sector, PhysicalSectorSize: sector,
		ProtectiveMBR: true, GUID: stableGUID(vol.Name)}
	if err := d.Partition(table); err != nil {
		return fmt.Errorf("cannot write partition table: %w", err)
	}
	p.done(diskSize(vol))
	for i, s := range vol.Structures {
		if err := writeStructure(d, i+1, s, opts, apps, p); err != nil {
			return fmt.Errorf("structure %s: %w", s.Name, err)
		}
	}
	return nil
}

func writeStructure(d *disk.Disk, index int, s *gadget.Structure, opts DiskOptions, apps []*seedApp, p *progress) error {
	gadgetFile := func(rel string) string { return filepath.Join(opts.Gadget, filepath.FromSlash(rel)) }
	switch {
	case s.Role == gadget.RoleBoot:
		files := []fileCopy{{opts.Kernel, "vmlinuz"}, {opts.Initrd, "initrd.img"}}
		for _, c := range s.Content {
			files = append(files, fileCopy{gadgetFile(c.Source), c.Target})
		}
		return writeFAT(d, index, s, files, p)
	case s.Role == gadget.RoleBootenv:
		return writeBootenv(d, index, p)
	case s.Role == gadget.RoleBase && s.Name == partition.BaseA:
		return writeRaw(d, index, s, opts.Base, p)
	case s.Role == gadget.RoleData:
		return writeData(d, index, s, opts, apps, p)
	case s.Filesystem == gadget.FilesystemVFAT:
		var files []fileCopy
		for _, c := range s.Content {
			files = append(files, fileCopy{gadgetFile(c.Source), c.Target})
		}
		return writeFAT(d, index, s, files, p)
	case s.Filesystem == gadget.FilesystemExt4:
		return writeExt4(d, index, s, nil, p)
	case len(s.Content) == 1:
		return writeRaw(d, index, s, gadgetFile(s.Content[0].Image), p)
	}
	return nil // left zeroed, like base-b
}

// fileCopy is a file from the host and its path inside a filesystem.
type fileCopy struct{ src, dst string }

func writeFAT(d *disk.Disk, index int, s *gadget.Structure, files []fileCopy, p *progress) error {
	p.begin("%s: FAT32", s.Name)
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: index, FSType: filesystem.TypeFat32,
		VolumeLabel: strings.ToUpper(s.Name), Reproducible: true})
	if err != nil {
		return fmt.Errorf("cannot create FAT32: %w", err)
	}
	var total int64
	for _, f := range files {
		n, err := copyInto(fs, f.src, "/"+f.dst)
		if err != nil {
			return err
		}
		total += n
	}
	p.done(total)
	return nil
}

// copyInto copies the host file src to dst in fs, making its directories.
func copyInto(fs filesystem.FileSystem, src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if dir := path.Dir(dst); dir != "/" && dir != "." {
		if err := fs.Mkdir(dir); err != nil {
			return 0, fmt.Errorf("cannot make %s: %w", dir, err)
		}
	}
	out, err := fs.OpenFile(dst, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", dst, err)
	}
	n, err := io.Copy(out, in)
	if err != nil {
		out.Close()
		return n, fmt.Errorf("cannot write %s: %w", dst, err)
	}
	return n, out.Close()
}

// writeBootenv writes the initial boot environment, slot a, with package
// boot's own writer: into a zeroed file of the two records, then into the
// partition.
func writeBootenv(d *disk.Disk, index int, p *progress) error {
	p.begin("bootenv: slot a")
	f, err := os.CreateTemp("", "paddock-bootenv-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(2 * 4096); err != nil {
		return err
	}
	if err := boot.Write(f.Name(), &boot.Env{Slot: "a"}); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := writePartition(d, index, f, 2*4096); err != nil {
		return fmt.Errorf("cannot write bootenv: %w", err)
	}
	p.done(2 * 4096)
	return nil
}

// writePartition writes the n bytes of r at the start of partition index
// and zeros after them: go-diskfs writes whole partitions only.
func writePartition(d *disk.Disk, index int, r io.Reader, n int64) error {
	part, err := d.GetPartition(index)
	if err != nil {
		return err
	}
	rest := part.GetSize() - n
	if rest < 0 {
		return fmt.Errorf("%s does not fit in the partition (%s)", humanBytes(n), humanBytes(part.GetSize()))
	}
	_, err = d.WritePartitionContents(index, io.MultiReader(io.LimitReader(r, n), io.LimitReader(zeros{}, rest)))
	return err
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func writeRaw(d *disk.Disk, index int, s *gadget.Structure, file string, p *progress) error {
	p.begin("%s: %s", s.Name, filepath.Base(file))
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > s.Size {
		return fmt.Errorf("%s is %s, larger than the structure (%s)", file, humanBytes(fi.Size()), humanBytes(s.Size))
	}
	if err := writePartition(d, index, f, fi.Size()); err != nil {
		return fmt.Errorf("cannot write %s: %w", file, err)
	}
	p.done(fi.Size())
	return nil
}

// checkGadgetPackage checks the seeded package a (from pdk): the gadget
// package, when isGadget, must be a gadget whose gadget.yaml is the one
// in the gadget directory dir the image is laid out from; no other
// package may be a gadget.
func checkGadgetPackage(pdk string, a *seedApp, isGadget bool, dir string) error {
	if !isGadget {
		if a.Type == manifest.TypeGadget {
			return fmt.Errorf("cannot seed %s: it is a gadget (give it with --gadget-package)", pdk)
		}
		return nil
	}
	if a.Type != manifest.TypeGadget {
		return fmt.Errorf("cannot seed %s as the gadget: it is a package of type %s (pack the gadget directory, whose meta/app.yaml says type: gadget)", pdk, a.Type)
	}
	inPkg, err := pack.ReadFile(pdk, gadget.File, gadget.MaxSize)
	if err != nil {
		return fmt.Errorf("cannot seed %s: %w", pdk, err)
	}
	inDir, err := os.ReadFile(filepath.Join(dir, gadget.File))
	if err != nil {
		return err
	}
	if !bytes.Equal(inPkg, inDir) {
		return fmt.Errorf("cannot seed %s: its %s differs from %s (pack and sign the gadget from the directory the image is built from)", pdk, gadget.File, filepath.Join(dir, gadget.File))
	}
	return nil
}
