package qemu

import (
	"reflect"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	amd64 := []string{"qemu-system-x86_64", "-accel", "tcg", "-M", "q35", "-m", "512", "-smp", "1",
		"-nodefaults", "-serial", "stdio", "-display", "none", "-no-reboot", "-kernel", "vmlinux", "-initrd", "initrd.img"}
	arm64 := []string{"qemu-system-aarch64", "-accel", "tcg", "-M", "virt", "-cpu", "cortex-a57", "-m", "512", "-smp", "1",
		"-nodefaults", "-serial", "stdio", "-display", "none", "-no-reboot", "-kernel", "vmlinuz", "-initrd", "initrd.img"}
	cat := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	tests := []struct {
		name string
		c    Config
		want []string
	}{{
		name: "amd64",
		c:    Config{Kernel: "vmlinux", Initrd: "initrd.img"},
		want: cat(amd64, []string{"-append", "console=ttyS0 quiet panic=-1 no_timer_check"}),
	}, {
		name: "arm64",
		c:    Config{Arch: ARM64, Kernel: "vmlinuz", Initrd: "initrd.img", Append: "paddock.slot=b"},
		want: cat(arm64, []string{"-append", "console=ttyAMA0 quiet panic=-1 paddock.slot=b"}),
	}, {
		name: "memory, cpus, no initrd",
		c:    Config{Kernel: "vmlinux", MemoryMB: 1024, CPUs: 2},
		want: []string{"qemu-system-x86_64", "-accel", "tcg", "-M", "q35", "-m", "1024", "-smp", "2",
			"-nodefaults", "-serial", "stdio", "-display", "none", "-no-reboot", "-kernel", "vmlinux",
			"-append", "console=ttyS0 quiet panic=-1 no_timer_check"},
	}, {
		name: "disks",
		c:    Config{Kernel: "vmlinux", Initrd: "initrd.img", Disks: []string{"a.img", "b,c.img"}, ReadOnlyDisks: []string{"ro.img"}},
		want: cat(amd64, []string{"-append", "console=ttyS0 quiet panic=-1 no_timer_check",
			"-drive", "file=a.img,if=virtio,format=raw",
			"-drive", "file=b,,c.img,if=virtio,format=raw",
			"-drive", "file=ro.img,if=virtio,format=raw,readonly=on"}),
	}, {
		name: "watchdog",
		c:    Config{Kernel: "vmlinux", Initrd: "initrd.img", Watchdog: true},
		want: cat(amd64, []string{"-append", "console=ttyS0 quiet panic=-1 no_timer_check", "-device", "i6300esb"}),
	}, {
		name: "forwards amd64",
		c: Config{Kernel: "vmlinux", Initrd: "initrd.img",
			Forwards:      []Forward{{HostPort: 8022, GuestPort: 22}, {HostPort: 8080, GuestPort: 80}},
			GuestForwards: []GuestForward{{GuestPort: 1883, HostPort: 41883}}},
		want: cat(amd64, []string{"-append", "console=ttyS0 quiet panic=-1 no_timer_check",
			"-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8022-:22,hostfwd=tcp:127.0.0.1:8080-:80,guestfwd=tcp:10.0.2.100:1883-tcp:127.0.0.1:41883,,reconnect=1",
			"-device", "virtio-net-pci,netdev=n0"}),
	}, {
		name: "serial ports, QMP and USB",
		c:    Config{Kernel: "vmlinux", Initrd: "initrd.img", Serials: []string{"/tmp/s1", "/tmp/a,b"}, QMP: "/tmp/qmp.sock", USB: true},
		want: cat(amd64, []string{"-append", "console=ttyS0 quiet panic=-1 no_timer_check",
			"-chardev", "file,id=serial1,path=/tmp/s1", "-serial", "chardev:serial1",
			"-chardev", "file,id=serial2,path=/tmp/a,,b", "-serial", "chardev:serial2",
			"-qmp", "unix:/tmp/qmp.sock,server=on,wait=off",
			"-device", "qemu-xhci,id=xhci"}),
	}, {
		name: "forwards arm64",
		c:    Config{Arch: ARM64, Kernel: "vmlinuz", Initrd: "initrd.img", Forwards: []Forward{{HostPort: 8022, GuestPort: 22}}},
		want: cat(arm64, []string{"-append", "console=ttyAMA0 quiet panic=-1",
			"-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8022-:22",
			"-device", "virtio-net-device,netdev=n0"}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := Command(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cmd.Args, tt.want) {
				t.Errorf("got  %q\nwant %q", cmd.Args, tt.want)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no kernel", Config{}, "no kernel"},
		{"arch", Config{Arch: "riscv64", Kernel: "k"}, `architecture "riscv64"`},
		{"watchdog arm64", Config{Arch: ARM64, Kernel: "k", Watchdog: true}, "i6300esb is a PCI device of the amd64 machine"},
		{"host port", Config{Kernel: "k", Forwards: []Forward{{HostPort: 0, GuestPort: 22}}}, "ports are 1 to 65535"},
		{"guest port", Config{Kernel: "k", GuestForwards: []GuestForward{{GuestPort: 70000, HostPort: 1}}}, "ports are 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Command(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestNetworkOnlyLoopback pins the networking rule: a guest gets no network
// unless asked, and every forward names 127.0.0.1 on the host side.
func TestNetworkOnlyLoopback(t *testing.T) {
	cmd, err := Command(Config{Kernel: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, "netdev") || a == "-nic" || a == "-net" {
			t.Errorf("got network argument %q without forwards, want none", a)
		}
	}
	cmd, err = Command(Config{Kernel: "k", Forwards: []Forward{{1, 2}}, GuestForwards: []GuestForward{{3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	netdev := cmd.Args[len(cmd.Args)-3]
	// ",," is a comma inside a rule (a guestfwd's chardev options).
	for _, rule := range strings.Split(strings.ReplaceAll(netdev, ",,", ";"), ",")[3:] {
		if !strings.Contains(rule, "tcp:127.0.0.1:") {
			t.Errorf("got rule %q, want one to 127.0.0.1", rule)
		}
	}
	if !strings.Contains(netdev, "restrict=on") {
		t.Errorf("got %q, want restrict=on", netdev)
	}
}

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"qemu", "-append", "console=ttyS0 quiet", "it's"})
	want := `qemu -append 'console=ttyS0 quiet' 'it'\''s'`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
