package boot

import (
	"path/filepath"
	"strings"
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
		{source: parts.node(partBase + slot), target: newRootDir, fstype: "squashfs", flags: mReadOnly},
		{source: parts.node(partData), target: nr("data"), fstype: "ext4", flags: mNoSuid | mNoDev},
		{source: "tmpfs", target: nr("run"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=0755"},
		{source: "tmpfs", target: nr("tmp"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=1777"},
		// The agent mounts app revisions under /apps, a mount point of the read-only base.
		{source: "tmpfs", target: nr("apps"), fstype: "tmpfs", flags: mNoSuid | mNoDev, data: "mode=0755"},
		{source: nr("data/paddock"), target: nr("var/lib/paddock"), flags: mBind},
		{source: devDir, target: nr("dev"), flags: mMove},
		{source: procDir, target: nr("proc"), flags: mMove},
		{source: sysDir, target: nr("sys"), flags: mMove},
	}
}

// chooseSlot reads the boot environment, applies the rule and writes the
// new environment when it changed. It returns the slot to boot.
func chooseSlot(con *console, bootenv, forced string) (string, error) {
	env, err := Read(bootenv)
	if err != nil && forced != "" {
		con.logf("%v: booting the forced slot %s", err, forced)
		return forced, nil
	} else if err != nil {
		return "", err
	}
	slot, next := Choose(env, forced)
	con.logf("boot environment %+v: booting slot %s", *env, slot)
	if *next != *env {
		if err := Write(bootenv, next); err != nil {
			return "", err
		}
	}
	return slot, nil
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
