package interfaces

func init() {
	register(&Interface{
		Name:    "log-observe",
		Summary: "read the host's logs under /var/log, read-only",
		Notes: "Does not connect by itself: logs hold what other apps and the system write, secrets " +
			"included. The sandbox shows the host's /var/log read-only, and AppArmor allows reading it. " +
			"The kernel's log (dmesg) needs the syslog call, which stays denied.",
		Mounts:   []Mount{{Source: "/var/log", Target: "/var/log"}},
		AppArmor: []string{"/var/log/ r,", "/var/log/** r,"},
		Denials:  Denials{Paths: []string{"/var/log/"}},
	})
}
