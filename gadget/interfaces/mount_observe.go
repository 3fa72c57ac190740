package interfaces

func init() {
	register(&Interface{
		Name:    "mount-observe",
		Summary: "read the host's mount table and disk usage, read-only",
		Notes: "Does not connect by itself: the host's mount table names every app's data and the devices " +
			"behind it. The sandbox's own mounts are always readable; this shows the host's /proc read-only at " +
			"/run/host/proc, where AppArmor allows the mount table of the host's first process " +
			"(/run/host/proc/1/mountinfo) and the swap and partition lists.",
		Mounts: []Mount{{Source: "/proc", Target: "/run/host/proc"}},
		AppArmor: []string{
			"/run/host/proc/ r,",
			"/run/host/proc/1/{mounts,mountinfo,mountstats} r,",
			"/run/host/proc/{partitions,swaps,filesystems} r,",
		},
		Denials: Denials{Paths: []string{"/run/host/proc/1/mount*"}},
	})
}
