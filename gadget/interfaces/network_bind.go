package interfaces

func init() {
	register(&Interface{
		Name:        "network-bind",
		Summary:     "the host's network as a server: bind, listen, accept",
		AutoConnect: true,
		HostNetwork: true,
		Denials: Denials{
			Syscalls:     []string{"bind", "listen", "accept", "accept4"},
			Capabilities: []string{"net_bind_service"},
			Families:     []string{"inet", "inet6"},
			Operations:   []string{"bind", "listen", "accept"},
		},
	})
}
