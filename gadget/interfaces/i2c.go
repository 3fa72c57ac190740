package interfaces

func init() {
	// A hardware slot of the gadget provides the device; until connections
	// land, a plug of it adds nothing, and the catalog only names it in
	// the hints of 'paddock debug denials'.
	register(&Interface{
		Name:    "i2c",
		Summary: "an I2C bus of the gadget",
		Denials: Denials{Paths: []string{"/dev/i2c-*", "/sys/class/i2c-dev/"}},
	})
}
