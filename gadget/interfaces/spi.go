package interfaces

import "regexp"

func init() {
	register(&Interface{
		Name:    "spi",
		Summary: "an SPI device of the gadget: its /dev/spidevB.C character device",
		Notes: "Grants the node of one chip select in the device cgroup and AppArmor, and gives the app's user " +
			"access to it. A disconnect stops the plug's running processes.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			Attrs:   []string{"path"},
			Nodes:   regexp.MustCompile(`^/dev/spidev[0-9]+\.[0-9]+$`),
			Example: "/dev/spidev0.0",
			Grant: func(s SlotAttrs, matched []string) Grant {
				return Grant{Nodes: nodes(s.Path, matched)}
			},
		},
		Denials: Denials{Paths: []string{"/dev/spidev*"}},
	})
}
