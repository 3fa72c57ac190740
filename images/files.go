// Package images builds what a paddock device boots from: the initramfs
// ('paddock init' and the kernel modules it loads), the read-only base
// (a SquashFS root filesystem with the agent, busybox and apparmor_parser)
// and whole disk images laid out from a gadget (GPT, a FAT32 boot
// partition, the boot environment, the A/B base slots and an ext4 data
// partition with apps pre-installed). It is a builder's package: the
// device binary need not link it.
package images

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"paddock.dev/paddock/internal/atomicfile"
)

// writeFileAtomic writes data to name through a temporary file in the same
// directory, so a failed build leaves no half-written output.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	if name == "" {
		return fmt.Errorf("no output file given")
	}
	if err := atomicfile.WriteFile(name, data, perm); err != nil {
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	return nil
}

// tempOutput creates a temporary file next to out; commit renames it over
// out, and discard removes it.
func tempOutput(out string) (f *os.File, commit func() error, discard func(), err error) {
	if out == "" {
		return nil, nil, nil, fmt.Errorf("no output file given")
	}
	f, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot write %s: %w", out, err)
	}
	tmp := f.Name()
	discard = func() { f.Close(); os.Remove(tmp) }
	commit = func() error {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, out); err != nil {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(out))
	}
	return f, commit, discard, nil
}

// progress reports the steps of a build and how many bytes each wrote, on
// one line per step.
type progress struct {
	w     io.Writer
	start time.Time
	step  time.Time
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	now := time.Now()
	return &progress{w: w, start: now, step: now}
}

// begin announces a step.
func (p *progress) begin(format string, args ...any) {
	p.step = time.Now()
	fmt.Fprintf(p.w, "  %-44s", fmt.Sprintf(format, args...))
}

// done ends a step that wrote n bytes (n < 0: no byte count).
func (p *progress) done(n int64) {
	d := time.Since(p.step).Round(time.Millisecond)
	if n >= 0 {
		fmt.Fprintf(p.w, " %10s  %v\n", humanBytes(n), d)
	} else {
		fmt.Fprintf(p.w, " %10s  %v\n", "", d)
	}
}

// countingWriter counts the bytes passed through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
