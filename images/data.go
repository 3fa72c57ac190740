package images

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"

	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"

	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/internal/partition"
)

// StateDir is the agent's state directory inside the data partition (the
// device's /var/lib/paddock).
const StateDir = partition.StateDir

// dataEntry is a directory (src and content empty) or a file to create in
// the data partition: from a host file src, or with content.
type dataEntry struct {
	path    string
	src     string
	content []byte
	dir     bool
}

// dataTree lists what the data partition holds: the state directory with
// each seeded app installed as the agent installs one, seed.json, and the
// assertions of the base in slot a.
func dataTree(apps []*seedApp, baseAssert []byte) ([]dataEntry, error) {
	dirs := []string{"packages", "assertions", "data", "profiles"}
	var entries []dataEntry
	for _, d := range dirs {
		entries = append(entries, dataEntry{path: path.Join(StateDir, d), dir: true})
	}
	for _, a := range apps {
		entries = append(entries,
			dataEntry{path: path.Join(StateDir, a.Package), src: a.pdk},
			dataEntry{path: path.Join(StateDir, a.Assertion), content: a.bundle},
			dataEntry{path: path.Join(StateDir, "data", a.Name, strconv.Itoa(a.Revision)), dir: true},
			dataEntry{path: path.Join(StateDir, "data", a.Name, "common"), dir: true},
		)
	}
	if baseAssert != nil {
		entries = append(entries, dataEntry{path: path.Join(StateDir, partition.BaseAssertion("a")), content: baseAssert})
	}
	seed, err := seedJSON(apps)
	if err != nil {
		return nil, err
	}
	return append(entries, dataEntry{path: SeedFile, content: seed}), nil
}

func writeData(d *disk.Disk, index int, s *gadget.Structure, opts DiskOptions, apps []*seedApp, p *progress) error {
	entries, err := dataTree(apps, opts.baseAssert)
	if err != nil {
		return err
	}
	return writeExt4(d, index, s, entries, p)
}

func writeExt4(d *disk.Disk, index int, s *gadget.Structure, entries []dataEntry, p *progress) error {
	p.begin("%s: ext4", s.Name)
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: index, FSType: filesystem.TypeExt4, VolumeLabel: s.Name})
	if err != nil {
		return fmt.Errorf("cannot create ext4: %w", err)
	}
	var total int64
	for _, e := range entries {
		n, err := writeEntry(fs, e)
		if err != nil {
			return err
		}
		total += n
	}
	p.done(total)
	return nil
}

func writeEntry(fs filesystem.FileSystem, e dataEntry) (int64, error) {
	if e.dir {
		if err := fs.Mkdir(e.path); err != nil {
			return 0, fmt.Errorf("cannot make %s: %w", e.path, err)
		}
		return 0, nil
	}
	if err := fs.Mkdir(path.Dir(e.path)); err != nil {
		return 0, fmt.Errorf("cannot make %s: %w", path.Dir(e.path), err)
	}
	var r io.Reader = bytes.NewReader(e.content)
	if e.src != "" {
		f, err := os.Open(e.src)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		r = f
	}
	out, err := fs.OpenFile(e.path, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", e.path, err)
	}
	n, err := io.Copy(out, r)
	if err != nil {
		out.Close()
		return n, fmt.Errorf("cannot write %s: %w", e.path, err)
	}
	return n, out.Close()
}
