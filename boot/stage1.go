package boot

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/partition"
)

// mountFlags are the mount options init uses, mapped to MS_* on Linux.
type mountFlags uint

const (
	mReadOnly mountFlags = 1 << iota
	mNoSuid
	mNoDev
	mBind
	mMove
)

// A mountStep is one mount of the new root.
type mountStep struct {
	source, target, fstype string
	flags                  mountFlags
	data                   string
}

// rootMounts lists, in order, the mounts that make newRootDir the base of
// slot, with the data partition, and move /dev, /proc and /sys into it.
func rootMounts(parts partitions, slot string) []mountStep {
	nr := func(p string) string { return filepath.Join(newRootDir, p) }
	return []mountStep{
		{source: parts.node(partition.Base(slot)), target: newRootDir, fstype: "squashfs", flags: mReadOnly},
		{source: parts.node(partition.Data), target: nr("data"), fstype: "ext4", flags: mNoSuid | mNoDev},
		{source: "tmpfs", target: nr("run"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=0755"},
		{source: "tmpfs", target: nr("tmp"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=1777"},
		// The agent mounts app revisions under /apps, a mount point of the read-only base.
		{source: "tmpfs", target: nr("apps"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=0755"},
		{source: nr(path.Join("data", partition.StateDir)), target: nr(dirs.LibRel), flags: mBind},
		{source: devDir, target: nr("dev"), flags: mMove},
		{source: procDir, target: nr("proc"), flags: mMove},
		{source: sysDir, target: nr("sys"), flags: mMove},
	}
}

// chooseSlot reads the boot environment, applies the rule and writes the
// new environment when it changed. It returns the slot to boot and the
// problems to record (see recordProblems); a damaged environment is
// repaired (Load) and never stops the boot.
func chooseSlot(con *console, bootenv, forced string) (slot string, problems []string) {
	env, rep := Load(bootenv)
	if rep != nil {
		problems = append(problems, "bootenv: "+rep.String())
		con.logf("boot environment %s: %s", bootenv, rep)
	}
	slot, next := Choose(env, forced)
	con.logf("boot environment %+v: booting slot %s", *env, slot)
	if *next != *env {
		if err := Write(bootenv, next); err != nil {
			// A try that cannot be counted could be tried forever: boot
			// the known-good slot instead.
			p := fmt.Sprintf("bootenv: %s: booting the known-good slot %s", oneLine(err.Error()), next.Slot)
			problems = append(problems, p)
			con.logf("%s", p)
			return next.Slot, problems
		}
	}
	return slot, problems
}

// stage2Env is the environment stage 1 executes stage 2 with: its own,
// with the booted slot in PADDOCK_BOOT_SLOT.
func stage2Env(environ []string, slot string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "PADDOCK_BOOT_SLOT=") && !strings.HasPrefix(kv, "PADDOCK_ROOT=") {
			env = append(env, kv)
		}
	}
	return append(env, "PADDOCK_BOOT_SLOT="+slot)
}
