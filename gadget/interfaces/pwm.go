package interfaces

func init() {
	// A hardware slot of the gadget provides the device; until connections
	// land, a plug of it adds nothing, and the catalog only names it in
	// the hints of 'paddock debug denials'.
	register(&Interface{
		Name:    "pwm",
		Summary: "a PWM channel of the gadget",
		Denials: Denials{Paths: []string{"/sys/class/pwm/"}},
	})
}
