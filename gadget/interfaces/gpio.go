package interfaces

func init() {
	// A hardware slot of the gadget provides the device; until connections
	// land, a plug of it adds nothing, and the catalog only names it in
	// the hints of 'paddock debug denials'.
	register(&Interface{
		Name:    "gpio",
		Summary: "GPIO lines of the gadget",
		Denials: Denials{Paths: []string{"/dev/gpiochip*", "/sys/class/gpio/", "/sys/devices/platform/*/gpio/"}},
	})
}
