package interfaces

func init() {
	register(&Interface{
		Name:        "network-bind",
		Summary:     "the host's network as a server: bind, listen, accept",
		AutoConnect: true,
		Notes: "Connects by itself, like network: listening on the host's network is the job of an appliance's " +
			"services. Ports below 1024 need the net_bind_service capability, which only an app granted root " +
			"keeps. A disconnect takes effect at the next launch.",
		HostNetwork: true,
		Denials: Denials{
			Syscalls:     []string{"bind", "listen", "accept", "accept4"},
			Capabilities: []string{"net_bind_service"},
			Families:     []string{"inet", "inet6"},
			Operations:   []string{"bind", "listen", "accept"},
		},
	})
}
