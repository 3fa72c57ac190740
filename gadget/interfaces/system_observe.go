package interfaces

func init() {
	register(&Interface{
		Name:    "system-observe",
		Summary: "see the host's processes and system statistics, read-only",
		Notes: "Does not connect by itself: the host's process list shows every app's command lines. The " +
			"sandbox keeps its own PID namespace; the host's /proc is shown read-only at /run/host/proc, " +
			"where AppArmor allows the process list and each process's stat, status, cmdline and comm, and " +
			"the system's statistics (what ps and top read). Other users' processes stay hidden where the " +
			"kernel hides them (environ, fd).",
		Mounts: []Mount{{Source: "/proc", Target: "/run/host/proc"}},
		AppArmor: []string{
			"/run/host/proc/ r,",
			"/run/host/proc/@{pid}/ r,",
			"/run/host/proc/@{pid}/{stat,statm,status,cmdline,comm,cgroup} r,",
			"/run/host/proc/{loadavg,meminfo,stat,uptime,vmstat,diskstats,partitions,swaps} r,",
			"/run/host/proc/pressure/* r,",
		},
		Denials: Denials{Paths: []string{"/run/host/proc/"}},
	})
}
