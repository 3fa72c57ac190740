package interfaces

import "regexp"

func init() {
	register(&Interface{
		Name:    "serial-port",
		Summary: "a serial port of the gadget: read and write its tty",
		Notes: "The gadget's slot names the port by path (/dev/ttyS1, or a /dev/serial/by-id or by-path link) " +
			"or by USB properties (usb-vendor, usb-product, usb-serial), matched as adapters are plugged. " +
			"Grants the node in the device cgroup and AppArmor, and gives the app's user access to it. " +
			"A disconnect stops the plug's running processes: an open port stays usable otherwise.",
		OnDisconnect: Stop,
		Slot: &SlotKind{
			OneOf:    []string{"path", "usb-vendor"},
			Optional: []string{"usb-product", "usb-serial"},
			Nodes:    regexp.MustCompile(`^/dev/(tty(S|AMA|USB|ACM|mxc|O|SAC|PS|LP|AML|MFD|HS|GS|RPMSG)[0-9]+|serial/by-(id|path)/[A-Za-z0-9._:-]+)$`),
			Example:  "/dev/ttyS1",
			Grant: func(s SlotAttrs, matched []string) Grant {
				g := Grant{Nodes: nodes(s.Path, matched)}
				// Lock files of the port, where tools keep them (UUCP style).
				g.AppArmor = []string{"/run/lock/ r,", "/run/lock/LCK..* rwk,"}
				return g
			},
		},
		Denials: Denials{Paths: []string{"/dev/ttyS0", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*", "/dev/ttymxc*"}},
	})
}
