package gadget

import (
	"testing"

	"paddock.dev/paddock/gadget/interfaces"
)

func TestSlotMatches(t *testing.T) {
	chip := 2
	line := 5
	ftdi := Device{Subsystem: "tty", Name: "/dev/ttyUSB0", Props: map[string]string{
		PropVendor: "0403", PropModel: "6001", PropSerial: "A9XK2LQ",
		PropSerialLong: "FTDI_FT232R_USB_UART_A9XK2LQ", PropPath: "pci-0000:00:14.0-usb-0:2:1.0",
	}}
	linked := Device{Name: "/dev/ttyACM0", Props: map[string]string{PropLinks: "/dev/serial/by-id/usb-Arduino_Uno_1234-if00 /dev/serial/by-path/x"}}
	slot := func(iface string, a interfaces.SlotAttrs) *Slot {
		return &Slot{Name: "s", Interface: iface, SlotAttrs: a}
	}
	tests := []struct {
		name string
		slot *Slot
		dev  Device
		want bool
	}{
		{"path", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/ttyUSB0"}), ftdi, true},
		{"other path", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/ttyUSB1"}), ftdi, false},
		{"vendor", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403"}), ftdi, true},
		{"vendor product serial", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403", USBProduct: "6001", USBSerial: "A9XK2LQ"}), ftdi, true},
		{"ids in either case", slot("serial-port", interfaces.SlotAttrs{USBVendor: "10c4", USBProduct: "ea60"}), Device{Name: "/dev/ttyUSB3", Props: map[string]string{PropVendor: "10C4", PropModel: "EA60"}}, true},
		{"other serial", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403", USBSerial: "B0000"}), ftdi, false},
		{"serial is case sensitive", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403", USBSerial: "a9xk2lq"}), ftdi, false},
		{"other product", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403", USBProduct: "6015"}), ftdi, false},
		{"no properties", slot("serial-port", interfaces.SlotAttrs{USBVendor: "0403"}), Device{Name: "/dev/ttyS1"}, false},
		{"by-id from properties", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A9XK2LQ-if00-port0"}), ftdi, true},
		{"by-id of another", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_B0000-if00-port0"}), ftdi, false},
		{"by-path from properties", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0"}), ftdi, true},
		{"by-path of another port", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0"}), ftdi, false},
		{"by-id from links", slot("serial-port", interfaces.SlotAttrs{Path: "/dev/serial/by-id/usb-Arduino_Uno_1234-if00"}), linked, true},
		{"i2c", slot("i2c", interfaces.SlotAttrs{Path: "/dev/i2c-1"}), Device{Name: "/dev/i2c-1"}, true},
		{"gpio chip", slot("gpio", interfaces.SlotAttrs{Chip: &chip, Number: &line}), Device{Name: "/dev/gpiochip2"}, true},
		{"gpio other chip", slot("gpio", interfaces.SlotAttrs{Chip: &chip, Number: &line}), Device{Name: "/dev/gpiochip0"}, false},
		{"custom device", slot("custom-device", interfaces.SlotAttrs{Paths: []string{"/dev/a", "/dev/b"}}), Device{Name: "/dev/b"}, true},
		{"pwm has no node", slot("pwm", interfaces.SlotAttrs{Chip: &chip, Number: &line}), Device{Name: "/dev/pwm"}, false},
		{"nameless device", slot("custom-device", interfaces.SlotAttrs{Paths: []string{"/dev/a"}}), Device{}, false},
	}
	for _, tt := range tests {
		if got := tt.slot.Matches(tt.dev); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
