package interfaces

func init() {
	register(&Interface{
		Name:        "network",
		Summary:     "the host's network as a client",
		AutoConnect: true,
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
