package interfaces

func init() {
	register(&Interface{
		Name:        "network",
		Summary:     "the host's network as a client",
		AutoConnect: true,
		Notes: "Connects by itself: a client of the network is what most appliance apps are, and the host's " +
			"network namespace is its only grant (inet and inet6 sockets are in the default seccomp and " +
			"AppArmor policy; without the plug the sandbox has its own namespace with loopback only). " +
			"A disconnect takes effect at the next launch; running processes keep their sockets.",
		// The sandbox keeps the host's network namespace; the socket calls
		// are in the default seccomp allowlist and the default AppArmor
		// profile allows inet sockets, since the namespace isolates.
		HostNetwork: true,
		Denials: Denials{
			Syscalls: []string{
				"socket", "socketpair", "connect", "sendto", "sendmsg", "sendmmsg",
				"recvfrom", "recvmsg", "recvmmsg", "getsockopt", "setsockopt", "getsockname",
				"getpeername", "shutdown", "socketcall", "send", "recv",
			},
			Families: []string{"inet", "inet6"},
		},
	})
}
