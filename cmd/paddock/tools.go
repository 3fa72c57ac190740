//go:build !paddock_omit_tools

package main

import (
	"paddock.dev/paddock/images"
	"paddock.dev/paddock/mqtt/fleet"
	otacli "paddock.dev/paddock/ota/cli"
	"paddock.dev/paddock/qemu"
)

// toolCommands are the fleet operator's and the app developer's commands,
// which a device does not need.
var toolCommands = []group{
	{"Fleet operator", []command{
		{"fleet", "drive devices over MQTT: devices, send, rollout, serve", fleet.Run},
	}},
	{"App developer", []command{
		{"pack", "pack a directory into a .pdk package", otacli.Pack},
		{"sign", "sign a package revision", otacli.Sign},
		{"image", "build a device image: base, initrd, build", images.Run},
		{"vm", "boot a disk image in QEMU: run", qemu.Run},
	}},
}
