package interfaces

import "regexp"

func init() {
	register(&Interface{
		Name:    "i2c",
		Summary: "an I2C bus of the gadget: its /dev/i2c-N character device",
		Notes: "Grants the bus's node (I2C_RDWR and I2C_SLAVE ioctls included: ioctl is in the default seccomp set) " +
			"in the device cgroup and AppArmor, and gives the app's user access to it. The whole bus is granted: " +
			"i2c-dev cannot restrict addresses. A disconnect stops the plug's running processes.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			Attrs:   []string{"path"},
			Nodes:   regexp.MustCompile(`^/dev/i2c-[0-9]+$`),
			Example: "/dev/i2c-1",
			Grant: func(s SlotAttrs, matched []string) Grant {
				return Grant{Nodes: nodes(s.Path, matched)}
			},
		},
		Denials: Denials{Paths: []string{"/dev/i2c-*", "/sys/class/i2c-dev/"}},
	})
}
