package interfaces

import "strconv"

func init() {
	register(&Interface{
		Name:    "gpio",
		Summary: "a GPIO line of the gadget, through its chip's character device /dev/gpiochipN",
		Notes: "The slot names a chip and a line (chip, number). The whole chip is granted, not only the line: " +
			"the kernels paddock runs have no gpio-aggregator (see PLATFORM.md), the only way to give an app " +
			"some lines of a chip, so an app connected to one line of a chip can request every line of it. " +
			"Give a chip's lines to one app, or use separate chips. The legacy /sys/class/gpio interface is not " +
			"granted. A disconnect stops the plug's running processes, which releases the lines they hold.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			Attrs: []string{"chip", "number"},
			Grant: func(s SlotAttrs, matched []string) Grant {
				chip := ""
				if s.Chip != nil {
					chip = "/dev/gpiochip" + strconv.Itoa(*s.Chip)
				}
				return Grant{Nodes: nodes(chip, matched)}
			},
		},
		Denials: Denials{Paths: []string{"/dev/gpiochip*", "/sys/class/gpio/", "/sys/devices/platform/*/gpio/"}},
	})
}
