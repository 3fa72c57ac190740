package interfaces

func init() {
	register(&Interface{
		Name:    "custom-device",
		Summary: "device nodes the gadget lists by path, for hardware no other interface describes",
		Notes: "The slot lists its nodes (paths); each is granted in the device cgroup and AppArmor, and the " +
			"app's user is given access to it. It never connects by itself. A disconnect stops the plug's " +
			"running processes.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			Attrs: []string{"paths"},
			Grant: func(s SlotAttrs, matched []string) Grant {
				return Grant{Nodes: nodes("", append(append([]string(nil), s.Paths...), matched...))}
			},
		},
	})
}
