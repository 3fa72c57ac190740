package interfaces

import "strconv"

func init() {
	register(&Interface{
		Name:    "pwm",
		Summary: "a PWM channel of the gadget, through /sys/class/pwm",
		Notes: "The slot names a chip and a channel (chip, number). The sandbox shows the chip's sysfs " +
			"directory read-write at /sys/class/pwm/pwmchipCHIP (the only sysfs it can write); AppArmor allows " +
			"export and unexport of the chip and the channel's own files (period, duty_cycle, enable, " +
			"polarity), which the app's user is given write access to. A chip absent when the policy is " +
			"resolved is shown once it is resolved again. A disconnect stops the plug's running processes.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			Attrs: []string{"chip", "number"},
			Grant: func(s SlotAttrs, _ []string) Grant {
				if s.Chip == nil || s.Number == nil {
					return Grant{}
				}
				chip := "/sys/class/pwm/pwmchip" + strconv.Itoa(*s.Chip)
				ch := chip + "/pwm" + strconv.Itoa(*s.Number)
				files := []string{chip + "/export", chip + "/unexport"}
				for _, f := range []string{"period", "duty_cycle", "enable", "polarity"} {
					files = append(files, ch+"/"+f)
				}
				return Grant{
					Mounts: []Mount{{Source: chip, Target: chip, Write: true}},
					AppArmor: []string{
						chip + "/ r,",
						chip + "/{export,unexport,npwm} rw,",
						ch + "/ r,",
						ch + "/{period,duty_cycle,enable,polarity,capture} rw,",
						"/sys/devices/**/pwm/pwmchip" + strconv.Itoa(*s.Chip) + "/{export,unexport,npwm} rw,",
						"/sys/devices/**/pwm/pwmchip" + strconv.Itoa(*s.Chip) + "/pwm" + strconv.Itoa(*s.Number) + "/{period,duty_cycle,enable,polarity,capture} rw,",
					},
					Files: files,
				}
			},
		},
		Denials: Denials{Paths: []string{"/sys/class/pwm/"}},
	})
}
