package interfaces

func init() {
	register(&Interface{
		Name:        "hardware-observe",
		Summary:     "read the host's /sys (hardware description), read-only",
		AutoConnect: true,
		Mounts:      []Mount{{Source: "/sys", Target: "/sys"}},
	})
}
