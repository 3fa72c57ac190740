package interfaces

func init() {
	register(&Interface{
		Name:        "hardware-observe",
		Summary:     "read the host's /sys (hardware description), read-only",
		AutoConnect: true,
		Notes: "Connects by itself: reading the hardware description (what lsusb, lspci, sensors read) " +
			"changes nothing and is judged safe on an appliance. The sandbox shows the host's /sys " +
			"read-only, and AppArmor allows reading it; writing stays denied.",
		Mounts:   []Mount{{Source: "/sys", Target: "/sys"}},
		AppArmor: []string{"/sys/ r,", "/sys/** r,"},
	})
}
