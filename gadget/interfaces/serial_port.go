package interfaces

func init() {
	// A hardware slot of the gadget provides the device; until connections
	// land, a plug of it adds nothing, and the catalog only names it in
	// the hints of 'paddock debug denials'.
	register(&Interface{
		Name:    "serial-port",
		Summary: "a serial port of the gadget",
		Denials: Denials{Paths: []string{"/dev/ttyS0", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*", "/dev/ttymxc*"}},
	})
}
