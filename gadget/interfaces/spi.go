package interfaces

func init() {
	// A hardware slot of the gadget provides the device; until connections
	// land, a plug of it adds nothing, and the catalog only names it in
	// the hints of 'paddock debug denials'.
	register(&Interface{
		Name:    "spi",
		Summary: "an SPI device of the gadget",
		Denials: Denials{Paths: []string{"/dev/spidev*"}},
	})
}
