package interfaces

func init() {
	register(&Interface{
		Name:    "network-control",
		Summary: "configure the host's network: interfaces, addresses, routes, firewall",
		Notes: "Never connects by itself: only the gadget's connections or an operator connect it. It gives " +
			"the host's network namespace and lets AppArmor allow net_admin and net_raw, netlink and packet " +
			"sockets; the launcher drops every capability of an app's own user, so only an app granted root " +
			"(grants: root) can use them. A disconnect stops the plug's running processes, which could keep " +
			"a raw socket open.",
		HostNetwork:  true,
		OnDisconnect: Stop,
		AppArmor: []string{
			"capability net_admin,",
			"capability net_raw,",
			"network netlink,",
			"network packet,",
			"network inet raw,",
			"network inet6 raw,",
			"@{PROC}/@{pid}/net/ r,",
			"@{PROC}/@{pid}/net/** r,",
		},
		Denials: Denials{
			Capabilities: []string{"net_admin", "net_raw"},
			Families:     []string{"packet"},
		},
	})
}
