package interfaces

func init() {
	register(&Interface{
		Name:        "network-observe",
		Summary:     "read the host's network configuration: interfaces, addresses, routes, sockets",
		AutoConnect: true,
		Notes: "Connects by itself: it reads what the network plug's host namespace already exposes " +
			"(/proc/net, netlink route dumps, as ip and ss do) and changes nothing; it is judged safe on an " +
			"appliance. It gives the host's network namespace and read-only netlink route sockets.",
		HostNetwork: true,
		AppArmor: []string{
			"network netlink raw,",
			"network netlink dgram,",
			"@{PROC}/@{pid}/net/ r,",
			"@{PROC}/@{pid}/net/** r,",
		},
		Denials: Denials{
			Families: []string{"netlink"},
			Paths:    []string{"/proc/*/net/"},
		},
	})
}
