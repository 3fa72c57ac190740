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

// dataMount mounts the data partition in the initramfs first: the slots'
// assertions are there, and init needs them to mount the base.
func dataMount(parts partitions) mountStep {
	return mountStep{source: parts.node(partition.Data), target: earlyDataDir, fstype: "ext4", flags: mNoSuid | mNoDev}
}

// rootMounts lists, in order, the mounts that make newRootDir, where the
// base is mounted, the root: the data partition moved in from the
// initramfs, tmpfs, the state bind mount, and /dev, /proc and /sys moved
// in.
func rootMounts() []mountStep {
	nr := func(p string) string { return filepath.Join(newRootDir, p) }
	return []mountStep{
		{source: earlyDataDir, target: nr("data"), flags: mMove},
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

// A choice is the slot the boot rule chose and what to record of it.
type choice struct {
	slot     string
	forced   bool   // paddock.slot
	tried    bool   // slot is a try (env.Trying), not committed
	env      *Env   // the environment as written
	bootenv  string // its partition
	problems []string
}

// chooseSlot reads the boot environment, applies the rule and writes the
// new environment when it changed. It returns the slot to boot and the
// problems to record (see recordProblems); a damaged environment is
// repaired (Load) and never stops the boot.
func chooseSlot(con *console, bootenv, forced string) *choice {
	env, rep := Load(bootenv)
	c := &choice{bootenv: bootenv, forced: forced != ""}
	if rep != nil {
		c.problems = append(c.problems, "bootenv: "+rep.String())
		con.logf("boot environment %s: %s", bootenv, rep)
	}
	slot, next := Choose(env, forced)
	c.slot, c.env = slot, next
	c.tried = !c.forced && slot == next.Trying
	try := ""
	if c.tried {
		try = fmt.Sprintf(" (a try: boot %d of %d)", next.BootCount, next.attempts())
	}
	con.logf("boot environment %s: booting slot %s%s", describeEnv(env), slot, try)
	if next.Last != env.Last && next.Last.Result == ResultFailed {
		p := fmt.Sprintf("base: the try of slot %s failed: %s; booting the known-good slot %s", next.Last.Slot, next.Last.Reason, next.Slot)
		c.problems = append(c.problems, p)
		con.logf("%s", p)
	}
	if *next != *env {
		if err := Write(bootenv, next); err != nil {
			// A try that cannot be counted could be tried forever: boot
			// the known-good slot instead.
			p := fmt.Sprintf("bootenv: %s: booting the known-good slot %s", oneLine(err.Error()), next.Slot)
			c.problems = append(c.problems, p)
			con.logf("%s", p)
			c.slot, c.tried = next.Slot, false
		}
	}
	return c
}

// describeEnv says what the environment holds, for the console.
func describeEnv(e *Env) string {
	s := "slot=" + e.Slot
	for _, kv := range []struct{ k, v string }{{"try", e.Try}, {"trying", e.Trying}, {"bad", e.Bad}} {
		if kv.v != "" {
			s += " " + kv.k + "=" + kv.v
		}
	}
	if e.Trying != "" {
		s += fmt.Sprintf(" boot %d of %d", e.BootCount, e.attempts())
	}
	return s
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
